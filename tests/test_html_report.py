"""`modelblocks report`: the page model equals the report dicts it is built from, the HTML is well formed
and self-contained, and it renders in headless Chromium without console errors."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import modelblocks as mb
from modelblocks import cli
from modelblocks.reports.analyze import analyze_fit, measured_estimates
from modelblocks.reports import verification
from modelblocks.reports.report import build_report
from modelblocks.targets.boards import get_board
from modelblocks.targets.qemu import have_toolchain

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class SmallNet(torch.nn.Module):
    """conv -> relu -> flatten -> linear: a weighted layer of each kind, a fused activation and a view."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _model():
    torch.manual_seed(0)
    return SmallNet().eval(), (torch.randn(1, 1, 6, 6),)


@pytest.fixture(scope="module")
def float_page(tmp_path_factory):
    """Float32, simulated on the Cortex-M7 when the toolchain is there (the QEMU columns and times)."""
    model, example = _model()
    compiled = mb.compile(model, example)
    sim = mb.simulate(compiled, example, runs=2, print_table=False) if have_toolchain() else None
    path = tmp_path_factory.mktemp("float") / "report.html"
    page = mb.report(compiled, example, out=path, runs=2, simulation=sim, estimate=False, command="test")
    return compiled, sim, page, path


@pytest.fixture(scope="module")
def int8_page(tmp_path_factory):
    """int8, not simulated."""
    model, example = _model()
    calib = torch.randn(16, 1, 6, 6).numpy()
    compiled = mb.compile(model, example, quantize="int8", calibration=calib)
    path = tmp_path_factory.mktemp("int8") / "report.html"
    page = mb.report(compiled, example, out=path, runs=2, quantization_data=calib, estimate=False, command="test")
    return compiled, calib, page, path


# -- the page model against the report dicts ------------------------------------------------------------

def test_float_page_numbers_are_the_report_dicts(float_page):
    compiled, sim, page, _ = float_page
    estimates = measured_estimates(sim.targets[0].simulation) if sim else {}
    report = build_report(compiled.graph, compiled.source, estimates)
    assert [r["macs"] for r in page["layers"]] == [r["macs"] for r in report["layers"]]
    assert [r["live_bytes"] for r in page["layers"]] == [r["live_bytes"] for r in report["layers"]]
    assert [r["weight_bytes"] for r in page["layers"]] == [r["weight_bytes"] for r in report["layers"]]
    # totals are the sums of the rows, and equal the report's own totals
    assert page["totals"]["macs"] == sum(r["macs"] for r in page["layers"]) == report["macs"] == 6 * 6 * 4 * 9 + 144 * 5
    assert page["totals"]["params"] == sum(r["params"] for r in page["layers"]) == report["params"] == 40 + 725
    assert page["totals"]["weight_bytes"] == sum(r["weight_bytes"] for r in page["layers"]) == report["weights_bytes"]
    # the timeline's peak is the liveness lower bound of the arena plan
    tl = page["timeline"]
    assert tl["live_bytes"] == report["live_bytes_per_step"]
    assert max(tl["live_bytes"]) == tl["peak_bytes"] == tl["lower_bound"] == report["arena_lower_bound"]
    assert tl["arena_bytes"] == compiled.source.arena_bytes >= tl["lower_bound"]
    # the fit section holds the numbers `analyze` prints
    verdict = analyze_fit(report, get_board("stm32h723zg"))
    fit = page["fit"]
    assert (fit["fits"], fit["text"]) == (verdict.fits, verdict.text)
    assert (fit["flash"]["needed"], fit["ram"]["needed"]) == (verdict.flash_needed, verdict.ram_needed)
    assert fit["flash"]["needed"] == report["totals"]["weights_bytes"] + (report["totals"]["code_bytes"] or 0)
    assert fit["ram"]["needed"] == compiled.source.arena_bytes + (report["totals"]["stack_bytes"] or 0)
    # flash per op type adds up to the weights
    assert sum(r["weight_bytes"] for r in page["by_type"]) == report["weights_bytes"]
    assert [r["kernel"] for r in page["layers"]] == [n.kernel or "reference" for n in compiled.graph.nodes]


def test_float_verification_against_pytorch(float_page):
    compiled, sim, page, _ = float_page
    v = page["verification"]
    assert v["ok"] and v["mode"] == "float32"
    cells = v["outputs"][0]["cells"]
    expected = {"ref_vs_torch", "host_vs_torch", "host_vs_ref"} | ({"qemu_vs_torch", "qemu_vs_ref"} if sim else set())
    assert set(cells) == expected
    for key, cell in cells.items():
        assert cell["rel_l2"] < 1e-5 and cell["verdict"] == "ok", key
    # recompute the worst relative L2 of the host C against PyTorch on the same seeded inputs
    model, example = _model()
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for _ in range(2):
        x = torch.randn(example[0].shape, generator=gen)
        y = model(x).detach().numpy().astype(np.float64)
        c = compiled.run_c([x.numpy()])[0].astype(np.float64)
        worst = max(worst, float(np.linalg.norm(c - y) / np.linalg.norm(y)))
    assert cells["host_vs_torch"]["rel_l2"] == pytest.approx(worst, rel=1e-12, abs=1e-15)
    if not sim:
        assert any("QEMU: not simulated" in n for n in v["notes"])


def test_time_shares_sum_to_100_percent(float_page):
    compiled, sim, page, _ = float_page
    if sim is None:
        assert page["epilogue"] is None and all(r["instructions"] is None for r in page["layers"])
        pytest.skip("no Arm toolchain: the page has no instruction counts")
    target = sim.targets[0]
    shares = [r["share"] for r in page["layers"] if r["share"] is not None]
    assert sum(shares) + page["epilogue"]["share"] == pytest.approx(1.0, abs=1e-12)
    assert sum(r["share"] for r in page["by_type"] if r["share"] is not None) == pytest.approx(1.0, abs=1e-12)
    # the per-layer counts are the simulation's, and they add up to the whole inference
    by_index = {layer.index: layer.instructions for layer in target.simulation.layers}
    assert {r["index"]: r["instructions"] for r in page["layers"] if r["instructions"] is not None} == by_index
    assert page["totals"]["instructions"] == target.simulation.instructions[0]
    assert page["verification"]["outputs"][0]["cells"]["qemu_vs_torch"]["rel_l2"] == pytest.approx(
        target.checks[0].rel_l2_torch, rel=1e-12, abs=1e-15)


def test_int8_page_sqnr_rows_are_the_quantization_report(int8_page):
    compiled, calib, page, _ = int8_page
    q = compiled.quantization_report(calib).to_json()
    assert page["summary"]["quantization"] == "int8"
    assert [(l["node"], l["precision"], l["sqnr_db"]) for l in page["quantization"]["layers"]] == \
        [(l["node"], l["precision"], l["sqnr_db"]) for l in q["layers"]]
    assert page["quantization"]["output_sqnr_db"] == q["output_sqnr_db"]
    assert page["quantization"]["kept_float"] == q["kept_float"]
    # int8: the host C equals the int8 interpreter bit for bit; PyTorch differs by the quantization error
    v = page["verification"]
    cell = v["outputs"][0]["cells"]["host_vs_ref"]
    assert v["ok"] and (cell["mismatches"], cell["max_lsb"], cell["verdict"]) == (0, 0, "ok")
    assert cell["elements"] == 2 * 5
    assert v["outputs"][0]["cells"]["host_vs_torch"]["verdict"] == "quantization error"
    assert "qemu_vs_ref" not in v["outputs"][0]["cells"]


def test_int8_mismatch_counts_and_lsb_are_measured(int8_page):
    """An int8 output one step off on one element shows as 1 mismatch and 1 LSB (the page's cells come
    from verification.compare_stages, fed here a host C that is off by one step)."""
    compiled, _, _, _ = int8_page
    step = verification._output_lsb(compiled.graph, compiled.graph.outputs[0])
    assert step is not None and step > 0
    model, example = _model()
    real_run_c = compiled.run_c

    def off_by_one(arrays):
        out = [y.copy() for y in real_run_c(arrays)]
        out[0].reshape(-1)[3] += np.float32(step)
        return out

    compiled.run_c = off_by_one
    try:
        v = verification.compare_stages(compiled, compiled.torch_model, example, 2, 0, 1e-5, None)
    finally:
        del compiled.run_c
    cell = v["outputs"][0]["cells"]["host_vs_ref"]
    assert (cell["mismatches"], cell["max_lsb"], cell["verdict"], v["ok"]) == (2, 1, "FAIL", False)


# -- the HTML ------------------------------------------------------------------------------------------

class _Collector(HTMLParser):
    """Checks nesting (every opened element closed in order, void elements excepted) and collects the
    attributes that could reference something outside the file."""

    VOID = {"meta", "img", "br", "hr", "input", "link", "source", "col", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.refs, self.images, self.scripts, self.rows = [], [], [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)
        self.refs += [v for k, v in attrs.items() if k in ("src", "href", "srcset", "action") and v]
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.scripts += tag == "script"
        self.rows += tag == "tr" and attrs.get("class") == "layer"

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("which", ["float_page", "int8_page"])
def test_html_is_well_formed_and_self_contained(which, request):
    compiled, _, page, path = request.getfixturevalue(which)
    html = path.read_text(encoding="utf-8")
    parsed = _Collector()
    parsed.feed(html)
    parsed.close()
    assert parsed.errors == [] and parsed.stack == []
    assert parsed.scripts == 0
    assert not re.search(r"https?://", html)  # no external URL anywhere, not only in src/href
    assert all(ref.startswith("data:image/png;base64,") for ref in parsed.refs), parsed.refs
    assert parsed.rows == len(compiled.graph.nodes)
    expected_images = 2 + (page["simulation"] is not None) + (page["quantization"] is not None)
    assert len(parsed.images) == expected_images
    from PIL import Image

    for src in parsed.images:
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(png)) as im:
            im.verify()  # raises on a truncated or corrupt PNG
        with Image.open(io.BytesIO(png)) as im:
            assert im.width >= 300 and im.height >= 100
            assert np.asarray(im.convert("L")).std() > 5  # not a blank plot


def test_user_text_is_escaped(tmp_path):
    """Module paths and names come from the user's code: the template autoescapes them."""
    from modelblocks.reports.html import render_html

    model, example = _model()
    page = mb.report(model, example, out=None, runs=1, estimate=False, command="x <script>alert(1)</script>")
    page["layers"][0]["scope"] = "<b onload=x>"
    html = render_html(page)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b onload=x>" not in html and "&lt;b onload=x&gt;" in html


# -- the command line -----------------------------------------------------------------------------------

def test_cli_report_json_and_html(tmp_path, capsys):
    source = tmp_path / "net.py"
    source.write_text("import torch\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.fc = torch.nn.Linear(8, 3)\n\n    def forward(self, x):\n"
                      "        return torch.relu(self.fc(x))\n")
    out = tmp_path / "r.html"
    code = cli.main(["report", f"{source}:Net", "-s", "1,8", "-o", str(out), "--runs", "2", "--no-estimate", "--json"])
    captured = capsys.readouterr()
    page = json.loads(captured.out)  # stdout holds the page model and nothing else
    assert code == cli.EXIT_OK and out.is_file()
    assert page["summary"]["macs"] == 8 * 3 and page["summary"]["params"] == 8 * 3 + 3
    assert page["summary"]["command"].startswith(f"modelblocks report {source}:Net --input-shape 1,8 --out {out}")
    assert page["verification"]["ok"] and page["verification"]["runs"] == 2
    assert f"wrote {out}" in captured.err
    # bad input: one clear message, exit 2, nothing written
    code = cli.main(["report", f"{source}:Net", "-s", "1,8", "-o", str(tmp_path / "r.pdf")])
    assert code == cli.EXIT_USER_ERROR
    assert "--out" in capsys.readouterr().err and not (tmp_path / "r.pdf").exists()
    code = cli.main(["report", f"{source}:Net", "-s", "1,8", "-o", str(out), "--board", "nosuchboard"])
    assert code == cli.EXIT_USER_ERROR and "nosuchboard" in capsys.readouterr().err


# -- headless Chromium ----------------------------------------------------------------------------------

def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        message = "chromium missing: apt-get install --no-install-recommends chromium (make install does it)"
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)
    return exe


def _run_chromium(path, *args, tmp_path) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", *args, path.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


def _console_errors(stderr: str) -> list[str]:
    """Console messages of the page at warning level or worse, and uncaught exceptions."""
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or re.search(r":(WARNING|ERROR|FATAL):CONSOLE", line)
            or (":CONSOLE" in line and "file://" in line and "INFO:CONSOLE" not in line)]


def test_console_error_detection_works(tmp_path):
    """The check below would see an error: a page with a failing script yields an 'Uncaught' line."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    result = _run_chromium(bad, "--dump-dom", tmp_path=tmp_path)
    assert any("Uncaught ReferenceError" in line for line in _console_errors(result.stderr))


@pytest.mark.parametrize("which", ["float_page", "int8_page"])
def test_renders_in_chromium_without_console_errors(which, request, tmp_path):
    compiled, _, page, path = request.getfixturevalue(which)
    result = _run_chromium(path, "--dump-dom", tmp_path=tmp_path)
    assert _console_errors(result.stderr) == []
    dom = result.stdout
    assert dom.count('<tr class="layer">') == len(compiled.graph.nodes) == len(page["layers"])
    for row in page["layers"]:
        assert f'<td class="n">{row["macs"]:,}</td>' in dom
    assert 'id="verification-table"' in dom and ("PASSED" in dom)
    assert ('id="sqnr-table"' in dom) == (page["quantization"] is not None)


def test_screenshot_has_the_window_size_and_is_not_blank(float_page, tmp_path):
    from PIL import Image

    _, _, _, path = float_page
    shot = tmp_path / "shot.png"
    _run_chromium(path, f"--screenshot={shot}", "--window-size=1000,700", tmp_path=tmp_path)
    with Image.open(shot) as im:
        assert im.size == (1000, 700)
        grey = np.asarray(im.convert("L"), dtype=np.float64)
    assert grey.std() > 20  # text, tables and the verdict box, not an empty page
    assert math.isclose(grey.max(), 255, abs_tol=16) and grey.min() < 100  # light page, dark text


def test_the_demo_models_report_renders_in_chromium(tmp_path, capsys):
    """What `make demo` does, end to end (TinyViT compiled, verified, simulated on the M7 when the
    toolchain is there, firmware built): its build/demo/report.html renders with no console error
    and shows every layer with the instruction counts QEMU measured."""
    from modelblocks.models import demo

    assert demo.run(tmp_path / "demo", runs=2) == 0
    capsys.readouterr()
    path = tmp_path / "demo" / "report.html"
    result = _run_chromium(path, "--dump-dom", tmp_path=tmp_path)
    assert _console_errors(result.stderr) == []
    dom = result.stdout
    saved = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert dom.count('<tr class="layer">') == len(saved["layers"]) > 40
    assert f'{saved["macs"]:,}' in dom and "PASSED" in dom
    if have_toolchain():
        assert "QEMU cortex-m7" in dom


def test_report_is_byte_identical_under_source_date_epoch(tmp_path, monkeypatch):
    """With SOURCE_DATE_EPOCH set (reproducible builds), two reports of the same model are the same bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    model, example = _model()
    pages = []
    for k in range(2):
        compiled = mb.compile(model, example)
        path = tmp_path / f"r{k}.html"
        page = mb.report(compiled, example, out=path, runs=1, estimate=False, command="test")
        pages.append(path.read_bytes())
    assert page["summary"]["date"] == "2023-11-14 22:13 UTC"
    assert pages[0] == pages[1]
