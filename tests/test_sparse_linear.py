"""Sparse (CSR) weights for pruned Linear layers: ops/sparse_linear.py, kernels/mb_sparse_linear.c and
passes/sparsify.py. Float sparse layers match PyTorch (rel L2 < 1e-5) and the dense C; int8 sparse
layers equal the interpreter and the dense q_linear bit for bit; the pass rewrites only where the
byte and instruction counts say so; the C is clean under ASan/UBSan and runs on the Cortex-M7."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from helpers import check_model, outputs_of
from modelblocks import cli
from modelblocks.api import CompiledModel
from modelblocks.errors import GraphError, InputError
from modelblocks.ir import load_graph, save_graph, verify
from modelblocks.ir.dtypes import DType
from modelblocks.ir.graph import Tensor
from modelblocks.metrics import rel_l2
from modelblocks.ops.sparse_linear import col_dtype, csr_nbytes, densify, ptr_dtype, to_csr
from modelblocks.passes import ALL_PASSES, PIPELINE, sparsify
from modelblocks.passes.sparsify import FLOAT_COSTS, INT8_COSTS, INT8_OPT_COSTS, Costs, decide, sparse_pays

SPARSE = ("linear_sparse", "q_linear_sparse")


def prune_(linear: nn.Linear, sparsity: float, zero_rows=()) -> None:
    """Unstructured magnitude pruning in place: zero exactly round(sparsity * numel) smallest |w|,
    then whole rows `zero_rows`."""
    with torch.no_grad():
        w = linear.weight
        k = int(round(sparsity * w.numel()))
        if k:
            idx = torch.argsort(w.abs().reshape(-1))[:k]
            w.view(-1)[idx] = 0.0
        for r in zero_rows:
            w[r] = 0.0


class MLP(nn.Module):
    def __init__(self, sizes=(32, 48, 24, 10), bias=True):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for k, fc in enumerate(self.fcs):
            x = fc(x)
            if k < len(self.fcs) - 1:
                x = torch.relu(x)
        return x


def pruned_mlp(sizes, sparsity, zero_rows=(), bias=True) -> MLP:
    m = MLP(sizes, bias).eval()
    for fc in m.fcs:
        prune_(fc, sparsity, zero_rows)
    return m


def sparse_nodes(graph):
    return [n for n in graph.nodes if n.op in SPARSE]


def csr_bytes_formula(out_f: int, in_f: int, nnz: int, value_bytes: int) -> int:
    """values + col_index (1 B up to 256 columns, else 2 B) + row_ptr ((out + 1) x 2 B below 65536 nonzeros)."""
    return nnz * value_bytes + nnz * (1 if in_f <= 256 else 2) + (out_f + 1) * (2 if nnz < 65536 else 4)


# -- CSR helpers -----------------------------------------------------------------------------------------

def test_csr_round_trip_dtypes_and_bytes():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 300)).astype(np.float32)
    w[rng.random(w.shape) < 0.8] = 0.0
    w[2] = 0.0  # an empty row
    values, cols, ptr = to_csr(w)
    nnz = int(np.count_nonzero(w))
    assert values.dtype == np.float32 and cols.dtype == np.uint16 and ptr.dtype == np.uint16
    assert values.size == cols.size == nnz and ptr.tolist()[0] == 0 and ptr[-1] == nnz and ptr[3] == ptr[2]
    np.testing.assert_array_equal(densify(values, cols, ptr, 300), w)
    assert values.nbytes + cols.nbytes + ptr.nbytes == csr_nbytes(7, 300, nnz, 4) == csr_bytes_formula(7, 300, nnz, 4)
    assert col_dtype(256) == DType.uint8 and col_dtype(257) == DType.uint16
    assert ptr_dtype(65535) == DType.uint16 and ptr_dtype(65536) == DType.int32
    empty = to_csr(np.zeros((3, 5), np.int8))
    assert [a.size for a in empty] == [0, 0, 4] and empty[1].dtype == np.uint8
    np.testing.assert_array_equal(densify(*empty, 5), np.zeros((3, 5), np.int8))


def test_uint16_constants_survive_the_ir_round_trip(tmp_path):
    m = pruned_mlp((300, 6), 0.95)
    c = modelblocks.compile(m, (torch.randn(2, 300),), sparse="always")
    (node,) = sparse_nodes(c.graph)
    assert c.graph.tensors[node.inputs[2]].dtype == DType.uint16
    save_graph(c.graph, tmp_path / "ir")
    loaded = load_graph(tmp_path / "ir")
    assert loaded.same_as(c.graph)
    x = np.random.default_rng(1).standard_normal((2, 300)).astype(np.float32)
    c.save(tmp_path / "out")
    again = modelblocks.load(tmp_path / "out")
    np.testing.assert_array_equal(again.run_c([x])[0], c.run_c([x])[0])
    np.testing.assert_allclose(again.run_reference([x])[0], outputs_of(m, [torch.from_numpy(x)])[0], rtol=1e-5, atol=1e-6)


# -- float32: C and reference against PyTorch ------------------------------------------------------------

FLOAT_CASES = {
    # name: (layer sizes, input shape, sparsity, rows of zeros, bias)
    "2d_50": ((24, 16, 8), (3, 24), 0.5, (), True),
    "3d_BNC_90": ((40, 30, 7), (2, 5, 40), 0.9, (1,), True),
    "zero_row_no_bias_75": ((33, 20, 9), (4, 33), 0.75, (0, 5), False),
    "u16_columns_99": ((300, 12), (2, 300), 0.99, (), True),
}


@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_float_sparse_matches_torch_and_dense_c(case):
    sizes, shape, sparsity, zero_rows, bias = FLOAT_CASES[case]
    model = pruned_mlp(sizes, sparsity, zero_rows, bias)
    x = torch.randn(shape)
    compiled = modelblocks.compile(model, (x,), sparse="always")
    nodes = sparse_nodes(compiled.graph)
    assert [n.op for n in nodes] == ["linear_sparse"] * (len(sizes) - 1)
    result = check_model(model, (x,), compiled=compiled, sanitize=case == "3d_BNC_90")
    assert max(result["rel_c"]) < 1e-5
    # same sums in the same order as the dense reference kernel: the same values (the optimised dense
    # kernel sums in another order, with fused multiply-adds)
    dense = modelblocks.compile(model, (x,), sparse="off", kernels="reference")
    assert not sparse_nodes(dense.graph)
    np.testing.assert_array_equal(compiled.run_c([x.numpy()])[0], dense.run_c([x.numpy()])[0])
    np.testing.assert_array_equal(compiled.run_reference([x.numpy()])[0], dense.run_reference([x.numpy()])[0])


def test_all_zero_matrix_gives_the_bias():
    model = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 4, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.linspace(-1, 1, 6))
    x = torch.randn(3, 10)
    compiled = modelblocks.compile(model, (x,), sparse="always")
    first = sparse_nodes(compiled.graph)[0]
    assert compiled.graph.tensors[first.inputs[1]].shape == (0,)
    check_model(model, (x,), compiled=compiled, sanitize=False)
    hidden = np.maximum(np.linspace(-1, 1, 6, dtype=np.float32), 0)
    want = np.tile(hidden @ model[2].weight.detach().numpy().T, (3, 1))
    np.testing.assert_allclose(compiled.run_c([x.numpy()])[0], want, rtol=1e-6, atol=1e-7)


# -- int8: bit-exact with the interpreter and with the dense q_linear ---------------------------------

def int8_pair(sizes, shape, sparsity, zero_rows=()):
    """(float model, dense int8 CompiledModel, the same graph with every q_linear made sparse, inputs)."""
    model = pruned_mlp(sizes, sparsity, zero_rows)
    calib = torch.randn(64 * shape[0], *shape[1:])
    dense = modelblocks.compile(model, (calib[:shape[0]],), quantize="int8", calibration=calib, sparse="off")
    sparse = CompiledModel(sparsify.run(dense.graph, mode="always"))
    inputs = [torch.randn(shape).numpy() for _ in range(3)]
    return model, dense, sparse, inputs


@pytest.mark.parametrize("case", ["2d_80", "3d_BNC_95_zero_rows", "u16_columns_70"])
def test_int8_sparse_is_bit_exact_with_interpreter_and_dense(case):
    sizes, shape, sparsity, zero_rows = {
        "2d_80": ((32, 48, 24, 10), (2, 32), 0.8, ()),
        "3d_BNC_95_zero_rows": ((16, 40, 8), (2, 6, 16), 0.95, (0, 3)),
        "u16_columns_70": ((260, 16, 5), (1, 260), 0.7, ()),
    }[case]
    model, dense, sparse, inputs = int8_pair(sizes, shape, sparsity, zero_rows)
    assert [n.op for n in sparse_nodes(sparse.graph)] == ["q_linear_sparse"] * (len(sizes) - 1)
    assert "q_linear" not in sparse.graph.ops_count()
    for x in inputs:
        want = dense.run_reference([x])[0]
        np.testing.assert_array_equal(dense.run_c([x])[0], want)
        np.testing.assert_array_equal(sparse.run_reference([x])[0], want)
        np.testing.assert_array_equal(sparse.run_c([x])[0], want)
    # the int8 model still computes the float model's function (to the quantization error)
    torch_out = outputs_of(model, [torch.from_numpy(inputs[0])])[0]
    assert rel_l2(sparse.run_c([inputs[0]])[0], torch_out) < 0.1


def _retype_csr(graph, combos):
    """The same graph with the k-th sparse node's col_index / row_ptr stored as combos[k] dtypes."""
    g = graph.copy()
    for node, (cdt, pdt) in zip(sparse_nodes(g), combos):
        for name, dt in ((node.inputs[2], cdt), (node.inputs[3], pdt)):
            t = g.tensors[name]
            g.set_tensor(Tensor(t.name, t.shape, dt, t.quant, t.data.astype(dt.numpy)))
    verify(g, after="test")
    return g


COMBOS = [(DType.uint8, DType.uint16), (DType.uint8, DType.int32), (DType.uint16, DType.uint16),
          (DType.uint16, DType.int32)]


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_all_index_types_under_sanitizers(dtype):
    """Every (col_index, row_ptr) kernel variant, built with ASan + UBSan: same values as the host build
    and as the dense model (float: bit-identical sums; int8: bit-exact)."""
    sizes, shape = (24, 40, 32, 16, 6), (3, 24)
    if dtype == "float32":
        model = pruned_mlp(sizes, 0.85, zero_rows=(2,))
        dense = modelblocks.compile(model, (torch.randn(shape),), sparse="off", kernels="reference")
        inputs = [torch.randn(shape).numpy()]
    else:
        model, dense, _, inputs = int8_pair(sizes, shape, 0.85, zero_rows=(2,))
    graph = _retype_csr(sparsify.run(dense.graph, mode="always"), COMBOS)
    seen = {(graph.tensors[n.inputs[2]].dtype, graph.tensors[n.inputs[3]].dtype) for n in sparse_nodes(graph)}
    assert seen == set(COMBOS)
    compiled = CompiledModel(graph)
    x = inputs[0]
    want = dense.run_c([x])[0]
    np.testing.assert_array_equal(compiled.run_c([x])[0], want)
    np.testing.assert_array_equal(compiled.run_sanitized([x])[0], want)
    np.testing.assert_array_equal(compiled.run_reference([x])[0], dense.run_reference([x])[0])
    if dtype == "float32":
        assert rel_l2(want, outputs_of(model, [torch.from_numpy(x)])[0]) < 1e-5


# -- the pass: where it fires and where it declines -------------------------------------------------------

def test_rule_needs_fewer_bytes_and_fewer_instructions():
    c = Costs(per_mac=6.0, per_output=0.0, per_nonzero=7.0, sparse_per_output=0.0)
    # 100 x 100, 60 % nonzero: sparse instructions 42000 < 60000; bytes decide
    assert sparse_pays(1, 100, 100, 6000, dense_bytes=40000, sparse_bytes=39999, costs=c)
    assert not sparse_pays(1, 100, 100, 6000, dense_bytes=40000, sparse_bytes=40000, costs=c)
    # fewer bytes, but 7 * 9000 >= 6 * 10000 instructions
    assert not sparse_pays(1, 100, 100, 9000, dense_bytes=40000, sparse_bytes=100, costs=c)
    # a faster future dense kernel (3 instructions per MAC) moves the threshold
    fast = Costs(per_mac=3.0, per_output=0.0, per_nonzero=7.0, sparse_per_output=0.0)
    assert sparse_pays(1, 100, 100, 4500, 40000, 20202, c) and not sparse_pays(1, 100, 100, 4500, 40000, 20202, fast)
    # the measured costs: float sparse is cheaper per output row's work below ~85 % density at 256 inputs
    assert sparse_pays(1, 256, 256, int(0.8 * 65536), 4 * 65536, 0, FLOAT_COSTS)
    assert not sparse_pays(1, 256, 256, int(0.9 * 65536), 4 * 65536, 0, FLOAT_COSTS)
    assert INT8_COSTS.per_nonzero >= INT8_COSTS.per_mac > 0 and FLOAT_COSTS.per_nonzero >= FLOAT_COSTS.per_mac > 0
    # against the optimised dense int8 kernel (bench/sparse_linear.py: 1.4 instructions per MAC at 256 x 256)
    # CSR pays at 90 % sparsity, not at 70 %
    assert sparse_pays(1, 256, 256, int(0.1 * 65536), 65536, 0, INT8_OPT_COSTS)
    assert not sparse_pays(1, 256, 256, int(0.3 * 65536), 65536, 0, INT8_OPT_COSTS)


def test_auto_fires_only_where_bytes_and_instructions_drop():
    """float: 40 % sparsity saves bytes (5 B per nonzero < 4 B per weight) and instructions against the
    reference dense kernel, not against the optimised one; int8 at 40 % would need 2 B per nonzero >
    1 B per weight and stays dense; 95 % is sparse in both; 10 % in neither. weights_bytes of the report
    follows the CSR byte formula."""
    x = torch.randn(1, 64)
    reference = modelblocks.compile(pruned_mlp((64, 64, 16), 0.4), (x,), kernels="reference")
    assert len(sparse_nodes(reference.graph)) == 2
    for sparsity, float_sparse, int8_sparse in ((0.1, False, False), (0.4, False, False), (0.95, True, True)):
        model = pruned_mlp((64, 64, 16), sparsity)
        dense = modelblocks.compile(model, (x,), sparse="off")
        auto = modelblocks.compile(model, (x,))  # sparse="auto" by default
        assert len(sparse_nodes(auto.graph)) == (2 if float_sparse else 0), sparsity
        saved = 0
        for fc in model.fcs:
            w = fc.weight.detach().numpy()
            nnz = int(np.count_nonzero(w))
            if float_sparse:
                saved += w.size * 4 - csr_bytes_formula(*w.shape, nnz, 4)
        assert auto.report["weights_bytes"] == dense.report["weights_bytes"] - saved
        if float_sparse:
            assert auto.report["weights_bytes"] < dense.report["weights_bytes"]
            assert auto.report["macs"] == sum(int(np.count_nonzero(fc.weight.detach().numpy())) for fc in model.fcs)
        q = modelblocks.compile(model, (x,), quantize="int8", calibration=torch.randn(32, 64))
        qn = sparse_nodes(q.graph)
        assert len(qn) == (2 if int8_sparse else 0), sparsity
        for node in qn:
            values = q.graph.tensors[node.inputs[1]]
            out_f = q.graph.tensors[node.inputs[3]].shape[0] - 1
            in_f = node.attrs["in_features"]
            assert values.nbytes + q.graph.tensors[node.inputs[2]].nbytes + q.graph.tensors[node.inputs[3]].nbytes \
                == csr_bytes_formula(out_f, in_f, values.shape[0], 1) < out_f * in_f


def test_decisions_report_the_byte_counts():
    model = pruned_mlp((64, 64, 16), 0.4)
    x = torch.randn(1, 64)
    q = modelblocks.compile(model, (x,), quantize="int8", calibration=torch.randn(32, 64), sparse="off")
    f = modelblocks.compile(model, (x,), sparse="off")
    for graph, value_bytes, fires in ((f.graph, 4, True), (q.graph, 1, False)):
        for node in [n for n in graph.nodes if n.op in ("linear", "q_linear")]:
            # 40 %: fewer bytes in float, and fewer instructions than the reference kernel, not the optimised one
            assert not decide(graph, node).sparse
            d = decide(graph, node, kernels="reference")
            w = graph.tensors[node.inputs[1]]
            assert (d.dense_bytes, d.nnz) == (w.nbytes, int(np.count_nonzero(w.data)))
            assert d.sparse_bytes == csr_bytes_formula(*w.shape, d.nnz, value_bytes)
            assert d.sparse is fires, d
    assert "sparsify" in ALL_PASSES and "sparsify" not in PIPELINE


def test_off_never_and_always_needs_a_zero_and_shared_weights_stay_dense():
    model = pruned_mlp((16, 12, 4), 0.95)
    x = torch.randn(2, 16)
    assert not sparse_nodes(modelblocks.compile(model, (x,), sparse="off").graph)
    dense_model = MLP((16, 12, 4)).eval()  # no zero weights
    assert not sparse_nodes(modelblocks.compile(dense_model, (x,), sparse="always").graph)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            prune_(self.fc, 0.95)

        def forward(self, x):
            return self.fc(torch.relu(self.fc(x)))

    tied = Tied().eval()
    c = modelblocks.compile(tied, (x,), sparse="always")
    assert not sparse_nodes(c.graph)
    check_model(tied, (x,), compiled=c, sanitize=False)


def test_bad_sparse_option_and_bad_csr_name_the_node():
    x = torch.randn(1, 16)
    model = pruned_mlp((16, 8), 0.9)
    with pytest.raises(InputError, match="sparse must be 'auto', 'off' or 'always'"):
        modelblocks.compile(model, (x,), sparse="yes")
    graph = modelblocks.compile(model, (x,), sparse="always").graph
    (node,) = sparse_nodes(graph)
    cols = graph.tensors[node.inputs[2]]
    bad = graph.copy()
    bad.set_tensor(Tensor(cols.name, cols.shape, cols.dtype, None, np.full(cols.shape, 16, np.uint8)))
    with pytest.raises(GraphError, match=rf"node {node.name} \(op linear_sparse, module 'fcs.0'.*column 16"):
        verify(bad, after="test")
    ptr = graph.tensors[node.inputs[3]]
    bad = graph.copy()
    bad.set_tensor(Tensor(ptr.name, ptr.shape, ptr.dtype, None, ptr.data[::-1].copy()))
    with pytest.raises(GraphError, match=r"module 'fcs.0'.*row_ptr must rise from 0"):
        verify(bad, after="test")
    with pytest.raises(ValueError, match="sparsify mode must be one of"):
        sparsify.run(graph, mode="off")


def test_cli_sparse_option(tmp_path, capsys):
    (tmp_path / "model.py").write_text(textwrap.dedent("""\
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(32, 16)

            def forward(self, x):
                return self.fc(x)
        """))
    fc = nn.Linear(32, 16)
    prune_(fc, 0.95)  # beats the optimised dense kernel (at 90 % the per-row work of CSR does not pay here)
    torch.save({"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}, tmp_path / "net.pth")
    base = ["analyze", f"{tmp_path / 'model.py'}:Net", "-w", str(tmp_path / "net.pth"), "-s", "1,32", "--json",
            "--no-estimate"]
    reports = {}
    for mode in ("off", "auto"):
        assert cli.main([*base, "--sparse", mode]) == 0
        reports[mode] = json.loads(capsys.readouterr().out)["report"]
    assert [r["op"] for r in reports["off"]["layers"]] == ["linear"]
    assert [r["op"] for r in reports["auto"]["layers"]] == ["linear_sparse"]
    nnz = int(np.count_nonzero(fc.weight.detach().numpy()))
    assert reports["auto"]["weights_bytes"] == 16 * 4 + csr_bytes_formula(16, 32, nnz, 4)
    assert reports["off"]["weights_bytes"] == 16 * 4 + 16 * 32 * 4


# -- Cortex-M7 in QEMU -------------------------------------------------------------------------------------

def test_pruned_mlp_on_cortex_m7_is_exact_smaller_and_faster():
    from modelblocks.targets.qemu import have_toolchain

    if not have_toolchain():
        message = "arm-none-eabi-gcc or qemu-system-arm missing (see README)"
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)
    model = pruned_mlp((64, 96, 64, 10), 0.95)  # the optimised dense int8 kernel is hard to beat below ~85 %
    calib = torch.randn(64, 64)
    kw = dict(quantize="int8", calibration=calib)
    sparse = modelblocks.compile(model, (calib[:1],), **kw)  # auto
    dense = modelblocks.compile(model, (calib[:1],), sparse="off", **kw)
    assert len(sparse_nodes(sparse.graph)) == 3
    inputs = [[calib[i:i + 1].numpy()] for i in range(2)]
    sims = {k: c.simulate(inputs, target="cortex-m7") for k, c in (("sparse", sparse), ("dense", dense))}
    for run, (x,) in enumerate(inputs):
        want = dense.run_reference([x])[0]
        np.testing.assert_array_equal(sparse.run_reference([x])[0], want)
        np.testing.assert_array_equal(sims["sparse"].outputs[run][0], want)
        np.testing.assert_array_equal(sims["dense"].outputs[run][0], want)
    s, d = sims["sparse"].build.sizes, sims["dense"].build.sizes
    assert s.weights == sparse.report["weights_bytes"] < d.weights == dense.report["weights_bytes"]
    assert s.flash < d.flash
    assert sims["sparse"].instructions[0] < sims["dense"].instructions[0]


def test_small_savings_do_not_pay_for_the_kernel_code():
    """An 8x10 and a 4x8 layer at 90 % sparsity save a few hundred bytes of weights: less than the sparse
    kernel's code, so "auto" keeps it dense; a 64x64 one saves kilobytes and goes sparse."""
    from modelblocks.passes.sparsify import KERNEL_CODE_BYTES, decisions

    # against the reference dense kernel, where bytes and instructions both favour CSR at 90 %
    x = torch.randn(1, 10)
    small = modelblocks.compile(pruned_mlp((10, 8, 4), 0.9), (x,), kernels="reference")
    assert not sparse_nodes(small.graph)
    off = modelblocks.compile(pruned_mlp((10, 8, 4), 0.9), (x,), sparse="off", kernels="reference")
    found = [d for d in decisions(off.graph, kernels="reference").values() if d.op == "linear"]
    saved = sum(d.dense_bytes - d.sparse_bytes for d in found)
    assert 0 < saved <= KERNEL_CODE_BYTES["linear"]
    assert all("kernel's code" in d.reason for d in found)
    big = modelblocks.compile(pruned_mlp((64, 64, 16), 0.9), (torch.randn(1, 64),), kernels="reference")
    assert len(sparse_nodes(big.graph)) == 2
