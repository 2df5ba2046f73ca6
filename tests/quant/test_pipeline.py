"""The int8 pipeline as a whole: calibration inputs in every accepted form, observers, the rewrite
(boundaries, --keep-float, float fallback), bit-exact C, the quantization report and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.errors import InputError
from modelblocks.ir.verify import verify
from modelblocks.quant import arith
from modelblocks.quant.calibration import calibrate, calibration_sets
from modelblocks.metrics import rel_l2
from modelblocks.quant.exactness import output_checks
from modelblocks.quant.observers import OBSERVERS
from modelblocks.reports.quantization import format_quantization


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 24)
        self.norm = nn.LayerNorm(24)
        self.fc2 = nn.Linear(24, 5)

    def forward(self, x):
        return self.fc2(self.norm(torch.relu(self.fc1(x))))


def _net():
    torch.manual_seed(0)
    return Net().eval()


def _calib(n=64, seed=1):
    return torch.randn(n, 12, generator=torch.Generator().manual_seed(seed))


def test_int8_graph_has_boundaries_only_where_float_meets_int8():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib())
    ops = [n.op for n in c.graph.nodes]
    assert ops == ["quantize", "q_linear", "q_layer_norm", "q_linear", "dequantize"]
    assert c.quantization.float_nodes == {}
    assert c.graph.inputs == c.quantization.float_graph.inputs and c.graph.outputs == c.quantization.float_graph.outputs
    assert output_checks(c.graph) == ["exact"]
    verify(c.graph)
    for seed in range(4):
        xi = torch.randn(1, 12, generator=torch.Generator().manual_seed(seed)).numpy()
        ref, got = c.run_reference([xi])[0], c.run_c([xi])[0]
        np.testing.assert_array_equal(got, ref)
        assert arith.sqnr_db(model(torch.from_numpy(xi)).detach().numpy(), ref) > 25.0


def test_float_island_inside_int8_is_mixed_and_close():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib(), keep_float=["norm"])
    assert [n.op for n in c.graph.nodes] == ["quantize", "q_linear", "dequantize", "layer_norm", "quantize", "q_linear",
                                             "dequantize"]
    assert output_checks(c.graph) == ["mixed"]
    results = modelblocks.verify(c, (x,), runs=4, print_table=False)
    assert all(r.passes(1e-5, "int8") and r.rel_l2_c_ref < 1e-2 for r in results)


def test_int8_c_is_bit_exact_under_sanitizers():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib())
    np.testing.assert_array_equal(c.run_sanitized([x.numpy()])[0], c.run_reference([x.numpy()])[0])


def test_keep_float_globs_and_unknown_patterns():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib(), keep_float=["fc2"])
    assert [n.op for n in c.graph.nodes].count("q_linear") == 1
    assert any(why == "kept float by --keep-float" for why in c.quantization.float_nodes.values())
    # fc2 is a float tail: its input is bit-exact int8, its own output agrees to float rounding
    assert output_checks(c.graph) == ["float"]
    assert rel_l2(c.run_c([x.numpy()])[0], c.run_reference([x.numpy()])[0]) < 1e-6
    c2 = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib(), keep_float=["fc*", "norm"])
    assert "q_linear" not in c2.graph.ops_count() and "quantize" not in c2.graph.ops_count()
    with pytest.raises(InputError, match=r"'blocks\.\*' matches no layer.*fc1"):
        modelblocks.compile(model, (x,), quantize="int8", calibration=_calib(), keep_float=["blocks.*"])


def test_calibration_forms_give_the_same_sets(tmp_path):
    model, x = _net(), torch.randn(1, 12)
    graph = modelblocks.compile(model, (x,)).graph
    data = _calib(10).numpy()
    base = calibration_sets(data, graph)
    assert len(base) == 10 and all(s[0].shape == (1, 12) for s in base)
    np.save(tmp_path / "a.npy", data[:4])
    np.save(tmp_path / "b.npy", data[4:])
    np.savez(tmp_path / "c.npz", **{graph.inputs[0]: data})
    np.savez(tmp_path / "d.npz", data)
    (tmp_path / "calib.py").write_text("import numpy as np\n"
                                       f"def batches():\n    d = np.load({str(tmp_path / 'a.npy')!r})\n"
                                       f"    e = np.load({str(tmp_path / 'b.npy')!r})\n    return [d, e]\n")
    forms = [torch.from_numpy(data), [data], {graph.inputs[0]: data}, str(tmp_path), tmp_path / "c.npz",
             str(tmp_path / "d.npz"), f"{tmp_path / 'calib.py'}:batches", lambda: [data[:3], data[3:]]]
    for form in forms:
        sets = calibration_sets(form, graph)
        assert len(sets) == 10
        for a, b in zip(sets, base):
            np.testing.assert_array_equal(a[0], b[0])
    assert len(calibration_sets(data[0], graph)) == 1  # one sample without its batch dimension


@pytest.mark.parametrize("bad, message", [
    (None, "needs calibration data"),
    (np.zeros((4, 11), np.float32), r"shape \[4, 11\] but input .* takes \[1, 12\]"),
    (np.full((2, 12), np.nan, np.float32), "NaN or infinite"),
    ("missing.npz", "does not exist"),
    ("nowhere.txt", "neither an .npz/.npy file"),
    ("no_such_module_xyz:fn", "cannot load the calibration function"),
])
def test_bad_calibration_data_is_named(bad, message):
    model, x = _net(), torch.randn(1, 12)
    with pytest.raises(InputError, match=message):
        modelblocks.compile(model, (x,), quantize="int8", calibration=bad)


def test_bad_quantize_arguments():
    model, x = _net(), torch.randn(1, 12)
    with pytest.raises(InputError, match="quantize must be one of"):
        modelblocks.compile(model, (x,), quantize="int4")
    with pytest.raises(InputError, match="only apply with quantize"):
        modelblocks.compile(model, (x,), calibration=_calib())
    with pytest.raises(InputError, match="unknown observer"):
        modelblocks.compile(model, (x,), quantize="int8", calibration=_calib(), observer="magic")


def test_observers_ranges():
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=1000) for _ in range(20)]
    batches[7][3] = 40.0  # one outlier
    ranges = {}
    for name, cls in OBSERVERS.items():
        obs = cls(seed=0)
        for b in batches:
            obs.update(b)
        ranges[name] = obs.range()
    lo_all = min(b.min() for b in batches)
    assert ranges["minmax"] == (lo_all, 40.0)
    assert ranges["percentile"][1] < 10.0 and ranges["percentile"][0] > lo_all - 1e-9
    assert ranges["moving_average"][1] < 40.0
    assert ranges["mse"][1] < 40.0  # clipping the outlier costs less than losing resolution everywhere
    # the MSE range has the least round-trip error among the candidates it searched, minmax included
    x = np.concatenate(batches)

    def err(lo, hi):
        p = arith.params_from_range(lo, hi)
        return float(np.mean((arith.dequantize_values(arith.quantize_values(x, p.scale[0], p.zero_point[0]),
                                                      p.scale[0], p.zero_point[0]) - x) ** 2))
    assert err(*ranges["mse"]) < err(*ranges["minmax"])


def test_calibrate_observes_every_float_activation():
    model, x = _net(), torch.randn(1, 12)
    graph = modelblocks.compile(model, (x,)).graph
    params, ranges = calibrate(graph, calibration_sets(_calib(), graph), "minmax")
    acts = {t.name for t in graph.tensors.values() if not t.is_constant}
    assert set(params) == acts
    values = [modelblocks.interpreter.run(graph, [s], keep_all=True) for s in _calib().numpy()[:, None]]
    for name in acts:
        lo = min(v[name].min() for v in values)
        hi = max(v[name].max() for v in values)
        assert ranges[name] == pytest.approx((lo, hi))


def test_quantization_report_sqnr_and_agreement():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib())
    data = _calib(40, seed=5)
    labels = model(data).argmax(-1).numpy()
    report = c.quantization_report(data, labels)
    assert report.samples == 40 and report.float_accuracy == 1.0
    assert report.top1_agreement == report.quantized_accuracy
    # the output SQNR is the one computed directly from the two interpreters
    ref = model(data).detach().numpy()
    got = np.concatenate([c.run_reference([d[None]])[0] for d in data.numpy()])
    assert report.output_sqnr_db[0] == pytest.approx(arith.sqnr_db(ref, got), abs=0.05)
    by_scope = {l.scope: l for l in report.layers}
    assert by_scope["norm"].precision == "int8" and by_scope["fc1"].precision == "int8"
    assert by_scope["fc1"].weight_scales is not None and by_scope["fc1"].out_scale > 0
    assert all(math.isfinite(l.sqnr_db) and l.sqnr_db > 15 for l in report.layers if l.precision == "int8")
    assert report.weights_bytes < report.weights_bytes_float
    text = format_quantization(report)
    assert "top-1 agreement" in text and "largest losses" in text


def test_quantized_graph_round_trips_through_save_and_load(tmp_path):
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib())
    c.save(tmp_path / "out")
    loaded = modelblocks.load(tmp_path / "out")
    assert loaded.graph.same_as(c.graph) and loaded.quantize_mode == "int8"
    np.testing.assert_array_equal(loaded.run_c([x.numpy()])[0], c.run_c([x.numpy()])[0])


def test_verify_holds_int8_to_its_reference():
    model, x = _net(), torch.randn(1, 12)
    c = modelblocks.compile(model, (x,), quantize="int8", calibration=_calib())
    results = modelblocks.verify(c, (x,), runs=3, print_table=False)
    assert all(r.exact_c_ref and r.passes(1e-5, "int8") for r in results)
    assert all(r.rel_l2_c > 1e-5 and not r.passes(1e-5, None) for r in results)  # quantization error vs torch
