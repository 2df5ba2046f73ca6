"""What quantization cost, layer by layer: the SQNR of each layer's output against the float graph,
the ranges that were calibrated, and top-1 agreement (and accuracies, given labels) on eval data.

Both graphs run in the NumPy interpreter; the int8 interpreter is bit-exact with the generated C, so
these are the C's numbers. SQNR = 10 log10(sum x^2 / sum (x - x_q)^2) over all eval samples, x the
float graph's value of a tensor and x_q the quantized graph's (dequantized) value of the same tensor:
it measures the error accumulated up to that layer, not the layer's own contribution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..interpreter import run as run_graph
from ..quant import arith
from ..quant.calibration import calibration_sets


@dataclass
class LayerQuant:
    node: str
    op: str
    scope: str
    precision: str  # "int8", "float32" or "int8 weights"
    why_float: str = ""
    sqnr_db: float = math.inf
    out_range: tuple[float, float] | None = None  # observed during calibration
    out_scale: float | None = None
    out_zero_point: int | None = None
    weight_range: tuple[float, float] | None = None
    weight_scales: tuple[float, float] | None = None  # min and max per-channel scale


@dataclass
class QuantizationReport:
    mode: str
    observer: str
    calibration_sets: int
    samples: int
    layers: list[LayerQuant]
    output_sqnr_db: list[float]
    top1_agreement: float | None
    float_accuracy: float | None = None
    quantized_accuracy: float | None = None
    weights_bytes_float: int = 0
    weights_bytes: int = 0
    arena_bytes_float: int = 0
    arena_bytes: int = 0
    kept_float: list[str] = field(default_factory=list)

    def worst(self, n: int = 5) -> list[LayerQuant]:
        return sorted((l for l in self.layers if math.isfinite(l.sqnr_db)), key=lambda l: l.sqnr_db)[:n]

    def to_json(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean(asdict(self))


def quantization_report(compiled, inputs, labels=None) -> QuantizationReport:
    from ..backend.c.emitter import generate_c  # noqa: PLC0415

    info = compiled.quantization
    fgraph, qgraph = info.float_graph, compiled.graph
    sets = calibration_sets(inputs, fgraph)
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    agree, float_top1, q_top1 = [], [], []
    out_signal = [0.0] * len(fgraph.outputs)
    out_noise = [0.0] * len(fgraph.outputs)
    for inputs_set in sets:
        fv = run_graph(fgraph, inputs_set, keep_all=True)
        qv = run_graph(qgraph, inputs_set, keep_all=True)
        for node in fgraph.nodes:
            for o in node.outputs:
                approx = _quantized_value(o, qv, qgraph, info)
                if approx is None or fgraph.tensors[o].dtype.value != "float32":
                    continue
                ref = fv[o].astype(np.float64)
                signal[o] = signal.get(o, 0.0) + float(np.sum(ref**2))
                noise[o] = noise.get(o, 0.0) + float(np.sum((ref - approx) ** 2))
        for k, (fo, qo) in enumerate(zip(fgraph.outputs, qgraph.outputs)):
            ref, got = fv[fo].astype(np.float64), qv[qo].astype(np.float64)
            out_signal[k] += float(np.sum(ref**2))
            out_noise[k] += float(np.sum((ref - got) ** 2))
        ref0, got0 = fv[fgraph.outputs[0]], qv[qgraph.outputs[0]]
        if ref0.ndim >= 1 and ref0.shape[-1] > 1:
            f_cls = np.argmax(ref0.reshape(-1, ref0.shape[-1]), axis=-1)
            q_cls = np.argmax(got0.reshape(-1, got0.shape[-1]), axis=-1)
            agree.extend((f_cls == q_cls).tolist())
            float_top1.extend(f_cls.tolist())
            q_top1.extend(q_cls.tolist())

    w8_nodes = {n.name for n in qgraph.nodes if n.op.endswith("_w8")}
    layers = [_layer(node, fgraph, qgraph, info, signal, noise, w8_nodes) for node in fgraph.nodes]
    report = QuantizationReport(
        mode=info.mode, observer=info.observer, calibration_sets=info.calibration_sets, samples=len(sets),
        layers=layers, output_sqnr_db=[_db(s, n) for s, n in zip(out_signal, out_noise)],
        top1_agreement=float(np.mean(agree)) if agree else None,
        kept_float=sorted(f"{n}: {why}" for n, why in info.float_nodes.items()))
    if labels is not None and float_top1:
        labels = np.asarray(labels).reshape(-1)
        if labels.size != len(float_top1):
            raise ValueError(f"got {labels.size} labels for {len(float_top1)} predictions")
        report.float_accuracy = float(np.mean(np.asarray(float_top1) == labels))
        report.quantized_accuracy = float(np.mean(np.asarray(q_top1) == labels))
    float_c = generate_c(fgraph, prefix=compiled.prefix)
    report.weights_bytes_float, report.arena_bytes_float = float_c.weights_bytes, float_c.arena_bytes
    report.weights_bytes, report.arena_bytes = compiled.source.weights_bytes, compiled.source.arena_bytes
    return report


def _db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _quantized_value(name, qv, qgraph, info):
    """The quantized graph's value of float tensor `name`, in float64 (None if it has none)."""
    qname = info.int8_of.get(name)
    if qname is not None and qname in qv:
        p = qgraph.tensors[qname].quant
        return arith.dequantize_values(qv[qname], p.scale[0], p.zero_point[0]).astype(np.float64)
    if name in qv and name in qgraph.tensors and qgraph.tensors[name].dtype.value == "float32":
        return qv[name].astype(np.float64)
    return None


def _layer(node, fgraph, qgraph, info, signal, noise, w8_nodes) -> LayerQuant:
    out = node.outputs[0]
    if info.mode == "int8":
        precision = "float32" if node.name in info.float_nodes else "int8"
    else:
        precision = "int8 weights" if node.name in w8_nodes else "float32"
    layer = LayerQuant(node.name, node.op, node.scope, precision, info.float_nodes.get(node.name, ""),
                       _db(signal.get(out, 0.0), noise.get(out, 0.0)) if out in signal else math.nan)
    if info.ranges and out in info.ranges:
        layer.out_range = tuple(float(v) for v in info.ranges[out])
    qname = info.int8_of.get(out)
    if qname and qname in qgraph.tensors and qgraph.tensors[qname].quant:
        p = qgraph.tensors[qname].quant
        layer.out_scale, layer.out_zero_point = float(p.scale[0]), int(p.zero_point[0])
    weights = [fgraph.tensors[i] for i in node.inputs[1:2] if i and fgraph.tensors[i].is_constant]
    if weights and node.op in ("linear", "conv", "matmul", "conv_transpose", "embedding"):
        w = weights[0].data
        layer.weight_range = (float(w.min(initial=0.0)), float(w.max(initial=0.0)))
        scales = [t.quant.scale for t in qgraph.tensors.values()
                  if t.is_constant and t.quant is not None and t.quant.axis is not None and t.dtype.value == "int8"
                  and t.name.startswith(weights[0].name)]
        if scales:
            layer.weight_scales = (float(min(scales[0])), float(max(scales[0])))
    return layer


def format_quantization(report: QuantizationReport, worst: int = 5) -> str:
    lines = [f"quantization: {report.mode}" + (f", observer {report.observer}, {report.calibration_sets} calibration "
                                                 f"batches" if report.mode == "int8" else "")
             + f"; evaluated on {report.samples} samples"]
    if report.top1_agreement is not None:
        lines.append(f"  top-1 agreement float vs {report.mode}: {100 * report.top1_agreement:.2f} %")
    if report.float_accuracy is not None:
        lines.append(f"  top-1 accuracy: float {100 * report.float_accuracy:.2f} %, {report.mode} "
                     f"{100 * report.quantized_accuracy:.2f} %")
    lines.append("  output SQNR: " + ", ".join(f"{v:.1f} dB" for v in report.output_sqnr_db))
    ratio = report.weights_bytes_float / report.weights_bytes if report.weights_bytes else float("nan")
    lines.append(f"  weights {report.weights_bytes_float:,} B float -> {report.weights_bytes:,} B ({ratio:.2f}x smaller); "
                 f"arena {report.arena_bytes_float:,} B -> {report.arena_bytes:,} B")
    lines.append(f"  {'layer':<34} {'op':<12} {'precision':<12} {'SQNR dB':>8} {'range':>20} {'scale':>10} {'zp':>5}")
    for l in report.layers:
        rng = f"[{l.out_range[0]:.3g}, {l.out_range[1]:.3g}]" if l.out_range else ""
        scale = f"{l.out_scale:.3g}" if l.out_scale else ""
        zp = str(l.out_zero_point) if l.out_zero_point is not None else ""
        sq = "" if math.isnan(l.sqnr_db) else ("inf" if math.isinf(l.sqnr_db) else f"{l.sqnr_db:.1f}")
        lines.append(f"  {(l.scope or l.node)[:34]:<34} {l.op[:12]:<12} {l.precision:<12} {sq:>8} {rng:>20} {scale:>10} {zp:>5}")
    bad = report.worst(worst)
    if bad:
        lines.append("  largest losses: " + ", ".join(f"{l.scope or l.node} ({l.op}) {l.sqnr_db:.1f} dB" for l in bad))
    if report.kept_float:
        lines.append("  kept in float32: " + "; ".join(report.kept_float[:12]) + (" ..." if len(report.kept_float) > 12 else ""))
    return "\n".join(lines)
