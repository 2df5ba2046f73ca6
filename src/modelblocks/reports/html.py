"""The HTML report: one self-contained page (inline CSS, plots as base64 PNG, no script, no URL).

`build_page` turns the dicts the other reports already make (report.build_report, analyze.FitVerdict,
simulation.TargetResult, quantization.QuantizationReport, verification.compare_stages) into the page
model: plain JSON-able data, the numbers the page shows and what `modelblocks report --json`
prints. It measures nothing. `render_html` draws the plots (reports/html_plots.py) and fills the
jinja2 template templates/report.html.j2 (autoescaped: module paths and names are user text).
"""

from __future__ import annotations

import base64
from pathlib import Path

EPILOGUE = "(return, output copies)"


def build_page(report: dict, verdict: dict, board: dict, verification: dict | None, target: dict | None,
               quantization: dict | None, facts: dict) -> dict:
    """`report`: build_report's dict with code and stack in its totals; `verdict`: FitVerdict.to_dict();
    `board`: Board.to_dict(); `target`: TargetResult.to_dict() of the simulated core or None;
    `quantization`: QuantizationReport.to_json() or None; `facts`: api._graph_facts (dtypes, kernel
    variants, version, date, command line)."""
    sim_layers = {row["index"]: row for row in target["layers"]} if target else {}
    layers = []
    for row, kernel in zip(report["layers"], facts["kernels"]):
        sim = sim_layers.get(row["index"])
        layers.append({
            "index": row["index"], "op": row["op"], "name": row["name"], "scope": row["scope"] or "",
            "source": row["source"] or "", "inputs": row["inputs"], "outputs": row["outputs"],
            "params": row["params"], "macs": row["macs"], "weight_bytes": row["weight_bytes"],
            "activation_bytes": row["activation_bytes"], "scratch_bytes": row["scratch_bytes"],
            "live_bytes": row["live_bytes"], "kernel": kernel or "reference",
            "instructions": sim["instructions"] if sim else None, "share": sim["share"] if sim else None,
        })
    epilogue = None
    if target:
        # the denominator of the layers' shares (simulation.layer_rows): the first run, whole
        total = sum(r["instructions"] for r in target["layers"]) + target["epilogue_instructions"]
        epilogue = {"instructions": target["epilogue_instructions"],
                    "share": target["epilogue_instructions"] / total if total else 0.0}
    live = report["live_bytes_per_step"]
    peak = max(range(len(live)), key=live.__getitem__) if live else 0
    labels = [f"{r['op']} ({r['scope']})" if r["scope"] else r["op"] for r in layers] + ["copy out"] * (len(live) - len(layers))
    return {
        "title": f"{report['name']}: ModelBlocks report",
        "summary": {
            "name": report["name"], "inputs": facts["inputs"], "outputs": facts["outputs"], "ops": len(layers),
            "macs": report["macs"], "params": report["params"], "quantization": facts["quantization"],
            "version": facts["version"], "date": facts["date"], "command": facts["command"],
        },
        "fit": _fit(report, verdict, board),
        "layers": layers,
        "epilogue": epilogue,
        "totals": {
            "params": sum(r["params"] for r in layers), "macs": sum(r["macs"] for r in layers),
            "weight_bytes": sum(r["weight_bytes"] for r in layers),
            "activation_bytes": sum(r["activation_bytes"] for r in layers),
            "instructions": (sum(r["instructions"] or 0 for r in layers) + epilogue["instructions"]) if target else None,
        },
        "timeline": {"live_bytes": live, "labels": labels, "arena_bytes": report["arena_bytes"],
                     "lower_bound": report["arena_lower_bound"], "naive_bytes": report["arena_naive_bytes"],
                     "peak_step": peak, "peak_bytes": live[peak] if live else 0,
                     "peak_label": labels[peak] if labels else ""},
        "by_type": _by_type(layers, epilogue),
        "verification": verification,
        "simulation": _simulation(target),
        "quantization": _quantization(quantization),
    }


def _fit(report: dict, verdict: dict, board: dict) -> dict:
    """The numbers `modelblocks analyze` prints (format_totals, format_verdict), as fields."""
    t = report["totals"]
    return {
        "board": board["name"], "core": board["core"], "fits": verdict["fits"], "text": verdict["text"],
        "flash": {"total": board["flash"], "needed": verdict["flash_needed"], "free": verdict["flash_free"],
                  "weights": t["weights_bytes"], "code": t["code_bytes"], "code_method": t["code_method"]},
        "ram": {"total": board["ram"], "needed": verdict["ram_needed"], "free": verdict["ram_free"],
                "arena": t["arena_bytes"], "stack": t["stack_bytes"], "stack_method": t["stack_method"],
                "io_note": "model inputs and outputs live in the arena"},
        "arena_region": verdict["arena_region"], "stack_region": verdict["stack_region"],
        "linker_section": verdict["linker_section"], "linker_snippet": verdict["linker_snippet"],
        "contributors": verdict["contributors"], "notes": verdict["notes"],
        "regions": board["regions"],
        "arena_plan": {"planned": report["arena_bytes"], "lower_bound": report["arena_lower_bound"],
                       "naive": report["arena_naive_bytes"], "plan_over_bound": report["plan_over_bound"]},
    }


def _by_type(layers: list[dict], epilogue: dict | None) -> list[dict]:
    """Flash (weights) and time (instructions) summed per op; the epilogue is a row of its own so
    that the time shares add up to the whole inference."""
    rows: dict[str, dict] = {}
    for r in layers:
        row = rows.setdefault(r["op"], {"op": r["op"], "count": 0, "weight_bytes": 0, "macs": 0,
                                        "instructions": None, "share": None})
        row["count"] += 1
        row["weight_bytes"] += r["weight_bytes"]
        row["macs"] += r["macs"]
        if r["instructions"] is not None:
            row["instructions"] = (row["instructions"] or 0) + r["instructions"]
            row["share"] = (row["share"] or 0.0) + r["share"]
    out = sorted(rows.values(), key=lambda r: (-(r["instructions"] or 0), -r["weight_bytes"], r["op"]))
    if epilogue is not None:
        out.append({"op": EPILOGUE, "count": 0, "weight_bytes": 0, "macs": 0, **epilogue})
    return out


def _simulation(target: dict | None) -> dict | None:
    if target is None:
        return None
    return {"cpu": target["cpu"], "machine": target["machine"], "fpu": target["fpu"], "opt": target["opt"],
            "instructions": target["instructions"], "stack_bytes": target["stack_bytes"], "sizes": target["sizes"],
            "estimate": target["estimate"], "estimates_note": target.get("estimates_note", ""), "ok": target["ok"]}


def _quantization(q: dict | None) -> dict | None:
    if q is None:
        return None
    layers = [{"node": l["node"], "op": l["op"], "scope": l["scope"] or "", "precision": l["precision"],
               "why_float": l["why_float"], "sqnr_db": l["sqnr_db"]} for l in q["layers"]]
    return {"mode": q["mode"], "observer": q["observer"], "calibration_sets": q["calibration_sets"],
            "samples": q["samples"], "output_sqnr_db": q["output_sqnr_db"], "top1_agreement": q["top1_agreement"],
            "weights_bytes_float": q["weights_bytes_float"], "weights_bytes": q["weights_bytes"],
            "arena_bytes_float": q["arena_bytes_float"], "arena_bytes": q["arena_bytes"],
            "layers": layers, "kept_float": q["kept_float"]}


# -- rendering -------------------------------------------------------------------------------------

def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(page: dict) -> str:
    import jinja2  # noqa: PLC0415

    from . import html_plots  # noqa: PLC0415

    images = {"timeline": _png_data_uri(html_plots.memory_timeline(page))}
    images.update({key: _png_data_uri(png) for key, png in html_plots.by_type(page).items()})
    if page["quantization"] is not None:
        images["sqnr"] = _png_data_uri(html_plots.sqnr(page))
    env = jinja2.Environment(loader=jinja2.PackageLoader("modelblocks.reports", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["kb"] = lambda n: "-" if n is None else f"{n / 1024:,.1f} KB"
    env.filters["shape"] = lambda s: "-" if s is None else "x".join(str(d) for d in s) or "scalar"
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f} %"
    env.filters["sci"] = lambda v: "-" if v is None else f"{v:.2e}"
    env.filters["db"] = _db
    return env.get_template("report.html.j2").render(page=page, images=images)


def write_html(page: dict, path: str | Path) -> Path:
    from ..errors import InputError  # noqa: PLC0415

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(page), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report to {path}: {exc}") from None
    return path


def _num(v) -> str:
    return "-" if v is None else f"{v:,}"


def _db(v) -> str:
    """SQNR as quantization_report's JSON holds it: a float, "inf" (no error) or None (not measured)."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return "∞" if v == "inf" else v
    return f"{v:.1f}"
