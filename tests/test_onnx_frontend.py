"""The ONNX frontend: models exported by torch.onnx (both exporters) and hand-built ONNX graphs
compile to C whose output matches onnxruntime and PyTorch (relative L2 < 1e-5); opset differences,
shape-subgraph folding, the error paths, and an int8 compile of an ONNX CNN (C bit-exact against the
interpreter)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import modelblocks
from modelblocks.errors import InputError, UnsupportedOpError
from modelblocks.metrics import rel_l2

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOL = 1e-5


def _ort(model, feeds: list[np.ndarray]) -> list[np.ndarray]:
    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), feeds)})


def _check(model, feeds: list[np.ndarray], expected_torch=None, example_inputs=None, ops=()):
    """Compile with ModelBlocks and run the interpreter and the host C on `feeds`: (compiled, the worst
    relative L2 of either against onnxruntime, and of the C against PyTorch when `expected_torch`)."""
    compiled = modelblocks.compile(model, example_inputs)
    want = _ort(model, feeds)
    ref, got = compiled.run_reference(feeds), compiled.run_c(feeds)
    assert len(got) == len(want)
    errors = []
    for k, (w, r, c) in enumerate(zip(want, ref, got)):
        assert c.shape == w.shape, (k, c.shape, w.shape)
        errors += [rel_l2(r, w), rel_l2(c, w)]
    if expected_torch is not None:
        errors += [rel_l2(c, e) for e, c in zip(expected_torch, got)]
    counts = compiled.graph.ops_count()
    for op in ops:
        assert counts.get(op, 0) >= 1, counts
    return compiled, max(errors)


# -- PyTorch models exported with torch.onnx --------------------------------------------------------

class TinyBlock(nn.Module):
    """Pre-norm transformer block: LayerNorm, attention spelled with matmul / softmax, GELU MLP."""

    def __init__(self, dim=16, heads=2, hidden=32):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


def _bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _cnn():
    return _bn(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10))), torch.randn(1, 3, 16, 16)


MODELS = {
    "mlp": lambda: (nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 5)).eval(),
                    torch.randn(2, 10)),
    "cnn_bn_pool": _cnn,
    "depthwise_separable": lambda: (_bn(nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 4))), torch.randn(1, 3, 20, 20)),
    "transformer_block": lambda: (TinyBlock().eval(), torch.randn(1, 6, 16)),
}


def _export(model, x, path, dynamo: bool, opset: int | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"dynamo": dynamo}
        if opset is not None:
            kwargs["opset_version"] = opset
        try:
            torch.onnx.export(model, (x,), str(path), **kwargs)
        except ImportError as exc:  # the dynamo exporter needs onnxscript
            pytest.skip(f"torch.onnx.export(dynamo={dynamo}) cannot run here: {exc}")
    return str(path)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_model(name, dynamo, tmp_path):
    torch.manual_seed(0)
    model, x = MODELS[name]()
    # opset 17 for the TorchScript exporter: GELU is then spelled Div / Erf / Add / Mul / Mul
    path = _export(model, x, tmp_path / f"{name}.onnx", dynamo, opset=None if dynamo else 17)
    with torch.no_grad():
        expected = [model(x).numpy()]
    compiled, worst = _check(path, [x.numpy()], expected)
    assert worst < TOL, worst
    counts = compiled.graph.ops_count()
    if name == "transformer_block":
        assert counts["layer_norm"] == 2 and counts["softmax"] == 1 and counts["linear"] == 4, counts
    if name in ("cnn_bn_pool", "depthwise_separable"):
        assert "batch_norm" not in counts, counts  # folded into the convolutions, as from PyTorch
    # scopes are the module paths the exporter recorded
    assert any(n.scope for n in compiled.graph.nodes), [n.name for n in compiled.graph.nodes]


def test_torchscript_gelu_is_the_erf_pattern(tmp_path):
    model = nn.Sequential(nn.Linear(8, 8), nn.GELU()).eval()
    x = torch.randn(3, 8)
    path = _export(model, x, tmp_path / "gelu.onnx", dynamo=False, opset=17)
    assert "Erf" in {n.op_type for n in onnx.load(path).graph.node}
    assert _check(path, [x.numpy()], [model(x).detach().numpy()], ops=("erf",))[1] < TOL


def test_model_proto_and_example_inputs(tmp_path):
    model, x = MODELS["mlp"]()
    path = _export(model, x, tmp_path / "mlp.onnx", dynamo=False)
    proto = onnx.load(path)
    compiled = modelblocks.compile(proto, (x,))
    assert rel_l2(compiled.run_c([x.numpy()])[0], model(x).detach().numpy()) < TOL


def test_int8_onnx_cnn_bit_exact(tmp_path):
    torch.manual_seed(1)
    model, x = _cnn()
    path = _export(model, x, tmp_path / "cnn.onnx", dynamo=False)
    calib = torch.randn(16, 3, 16, 16).numpy()  # 16 samples of the [1, 3, 16, 16] input
    compiled = modelblocks.compile(path, quantize="int8", calibration=calib)
    assert compiled.quantize_mode == "int8"
    counts = compiled.graph.ops_count()
    assert any(op.startswith("q_") for op in counts), counts
    xs = [x.numpy()]
    ref, got = compiled.run_reference(xs), compiled.run_c(xs)
    for r, c in zip(ref, got):
        np.testing.assert_array_equal(c, r)
    with torch.no_grad():
        want = model(x).numpy()
    assert rel_l2(ref[0], want) < 0.2


# -- hand-built graphs -------------------------------------------------------------------------------

def _model(nodes, inputs, outputs, inits=(), opset=17, ir_version=8):
    """inputs/outputs: [(name, shape)] float32; inits: {name: array}."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _i64(*v):
    return np.array(v, dtype=np.int64)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_semantics(opset):
    # opset < 13: softmax over all dims from axis on (flattened); 13+: along axis only
    m = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1), helper.make_node("LogSoftmax", ["x"], ["z"])],
               [("x", [2, 3, 4])], [("y", None), ("z", None)], opset=opset)
    assert _check(m, [_rand(2, 3, 4)], ops=("softmax", "log_softmax"))[1] < TOL


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_axes_as_attribute_or_input(opset):
    """Squeeze/Unsqueeze (13), Split (13; num_outputs 18), ReduceMean (18), Clip (11), Pad (11)."""
    x = "x"
    nodes, inits = [], {}

    def axes_node(op, inputs, outputs, since, axes, **attrs):
        if opset >= since:
            name = f"{outputs[0]}_axes"
            inits[name] = _i64(*axes)
            return helper.make_node(op, inputs + [name], outputs, **attrs)
        return helper.make_node(op, inputs, outputs, axes=list(axes), **attrs)

    nodes.append(axes_node("Unsqueeze", [x], ["u"], 13, [0, 3]))  # [1, 2, 6, 1, 4]
    nodes.append(axes_node("Squeeze", ["u"], ["s"], 13, [0, -2]))  # [2, 6, 4]
    if opset >= 18:
        nodes.append(helper.make_node("Split", ["s"], ["a", "b"], axis=1, num_outputs=2))
    elif opset >= 13:
        inits["split"] = _i64(2, 4)
        nodes.append(helper.make_node("Split", ["s", "split"], ["a", "b"], axis=1))
    else:
        nodes.append(helper.make_node("Split", ["s"], ["a", "b"], axis=1, split=[2, 4]))
    nodes.append(axes_node("ReduceMean", ["b"], ["m"], 18, [1], keepdims=1))
    if opset >= 11:
        inits["lo"], inits["hi"] = np.array(-0.5, np.float32), np.array(0.7, np.float32)
        nodes.append(helper.make_node("Clip", ["a", "lo", "hi"], ["c"]))
        inits["pads"] = _i64(0, 1, 0, 0, 2, 1)
        inits["pv"] = np.array(0.25, np.float32)
        nodes.append(helper.make_node("Pad", ["m", "pads", "pv"], ["p"]))
    else:
        nodes.append(helper.make_node("Mul", ["a", "m"], ["y"]))
    outputs = [("c", None), ("p", None)] if opset >= 11 else [("y", None)]
    m = _model(nodes, [(x, [2, 6, 4])], outputs, inits, opset=opset)
    assert _check(m, [_rand(2, 6, 4)])[1] < TOL


def test_clip_and_pad_attributes_before_opset_11():
    m = _model([helper.make_node("Clip", ["x"], ["c"], min=-0.3, max=0.4),
                helper.make_node("Pad", ["c"], ["y"], pads=[0, 1, 2, 0, 0, 1], value=1.5)],
               [("x", [2, 3, 4])], [("y", None)], opset=10)
    assert _check(m, [_rand(2, 3, 4)], ops=("clamp", "pad"))[1] < TOL


@pytest.mark.parametrize("trans_a,trans_b,alpha,beta,const_b", [
    (0, 1, 1.0, 1.0, True), (0, 0, 0.5, 2.0, True), (1, 1, 1.5, 0.5, True), (0, 1, 1.0, 1.0, False),
    (1, 0, 2.0, 0.0, False)])
def test_gemm(trans_a, trans_b, alpha, beta, const_b):
    a_shape = [5, 3] if trans_a else [3, 5]
    b_shape = [4, 5] if trans_b else [5, 4]
    inits = {"c": _rand(4, seed=2)}
    inputs = [("a", a_shape)]
    if const_b:
        inits["b"] = _rand(*b_shape, seed=1)
    else:
        inputs.append(("b", b_shape))
    m = _model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=trans_a, transB=trans_b, alpha=alpha,
                                 beta=beta)], inputs, [("y", [3, 4])], inits)
    feeds = [_rand(*a_shape)] + ([] if const_b else [_rand(*b_shape, seed=1)])
    assert _check(m, feeds, ops=("linear",) if const_b else ("matmul",))[1] < TOL


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad_and_pools(auto_pad):
    w, b = _rand(6, 2, 3, 3, seed=1), _rand(6, seed=2)
    # onnxruntime does not implement SAME_* with dilations
    attrs = {"strides": [2, 1], "dilations": [1, 1] if auto_pad.startswith("SAME") else [1, 2], "group": 2,
             "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = [1, 0, 2, 1]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], **attrs),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["p"], ["q"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["p"], ["r"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                              count_include_pad=1),
             helper.make_node("GlobalAveragePool", ["p"], ["g"])]
    m = _model(nodes, [("x", [1, 4, 9, 10])], [("q", None), ("r", None), ("g", None)], {"w": w, "b": b})
    assert _check(m, [_rand(1, 4, 9, 10)], ops=("conv", "max_pool", "avg_pool", "adaptive_avg_pool"))[1] < TOL


def test_shape_subgraph_is_folded():
    """x.view(x.size(0), -1) as the TorchScript exporter writes it: Shape -> Gather -> Unsqueeze ->
    Concat -> Reshape; no shape computation is left in the IR."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(_rand(24, 3, seed=3))),
             helper.make_node("MatMul", ["flat", "k"], ["y"])]
    m = _model(nodes, [("x", [2, 4, 2, 3])], [("y", [2, 3])],
               {"zero": np.array(0, np.int64), "axes0": _i64(0), "minus1": _i64(-1)}, opset=13)
    compiled, worst = _check(m, [_rand(2, 4, 2, 3)])
    assert worst < TOL, worst
    assert set(compiled.graph.ops_count()) <= {"reshape", "linear"}, compiled.graph.ops_count()


def test_layout_and_elementwise_ops():
    """Transpose, Slice (steps, negative and INT_MAX bounds), Gather (scalar and 2-D indices), Concat,
    Flatten, BatchNormalization, LayerNormalization, the GELU erf spelling, Pow, Sqrt, Sigmoid,
    LeakyRelu, Identity, Dropout."""
    c = 4
    inits = {"starts": _i64(1, -5), "ends": _i64(2**62, -1), "axes": _i64(1, 2), "steps": _i64(1, 2),
             "gi": np.array([[0, 2], [1, 1]], np.int64), "g0": np.array(1, np.int64),
             "scale": _rand(c, seed=4) + 2, "bias": _rand(c, seed=5), "mean": _rand(c, seed=6),
             "var": np.abs(_rand(c, seed=7)) + 0.5, "lns": _rand(6, seed=8), "lnb": _rand(6, seed=9),
             "sqrt2": np.array(1.4142135, np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32), "two": np.array(2.0, np.float32)}
    nodes = [
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Transpose", ["bn"], ["t"], perm=[0, 2, 3, 1]),            # [2, 5, 6, 4]
        helper.make_node("Slice", ["t", "starts", "ends", "axes", "steps"], ["s"]),  # [2, 4, 2, 4]
        helper.make_node("Gather", ["t", "gi"], ["g"], axis=3),                     # [2, 5, 6, 2, 2]
        helper.make_node("Gather", ["t", "g0"], ["g1"], axis=1),                    # [2, 6, 4]
        helper.make_node("Flatten", ["g"], ["f"], axis=3),                          # [60, 4]
        helper.make_node("Flatten", ["s"], ["fs"], axis=2),                         # [8, 8]
        helper.make_node("Concat", ["g1", "g1"], ["cat"], axis=-1),                 # [2, 6, 8]
        helper.make_node("Transpose", ["cat"], ["ct"], perm=[0, 2, 1]),             # [2, 8, 6]
        helper.make_node("LayerNormalization", ["ct", "lns", "lnb"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("Div", ["ln", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["ln", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["gelu"]),
        helper.make_node("Pow", ["gelu", "two"], ["sq"]),
        helper.make_node("Sqrt", ["sq"], ["abs"]),
        helper.make_node("Sigmoid", ["f"], ["sf"]),
        helper.make_node("LeakyRelu", ["fs"], ["lr"], alpha=0.2),
        helper.make_node("Identity", ["lr"], ["id"]),
        helper.make_node("Dropout", ["id"], ["y3"]),
        helper.make_node("Sub", ["abs", "gelu"], ["y1"]),
        helper.make_node("Tanh", ["sf"], ["y2"]),
    ]
    m = _model(nodes, [("x", [2, c, 5, 6])], [("y1", None), ("y2", None), ("y3", None)], inits, opset=17)
    assert _check(m, [_rand(2, c, 5, 6)], ops=("layer_norm", "erf", "pow_scalar", "index_select", "slice"))[1] < TOL


# -- error paths --------------------------------------------------------------------------------------

def test_unsupported_op_names_op_node_and_file(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="/features/act/Relu"),
                helper.make_node("Hardmax", ["r"], ["y"], name="/head/Hardmax")],
               [("x", [2, 5])], [("y", [2, 5])])
    path = tmp_path / "hardmax.onnx"
    onnx.save(m, str(path))
    with pytest.raises(UnsupportedOpError) as err:
        modelblocks.compile(str(path))
    text = str(err.value)
    assert "Hardmax" in text and "/head/Hardmax" in text and str(path) in text and "module 'head'" in text
    assert "Supported ONNX ops" in text and "Gemm" in text


def test_unsupported_attribute_is_refused_clearly():
    m = _model([helper.make_node("Gather", ["x", "idx"], ["y"], name="/emb/Gather")],
               [("x", [4, 3]), ("idx", [2])], [("y", None)])
    with pytest.raises(UnsupportedOpError, match=r"Gather.*/emb/Gather.*constant"):
        modelblocks.compile(m)


def test_dynamic_shape_needs_example_inputs(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["batch", 8])], [("y", ["batch", 8])])
    with pytest.raises(InputError, match=r"input 'x' has a dynamic shape.*example inputs"):
        modelblocks.compile(m)
    x = _rand(3, 8)
    assert _check(m, [x], example_inputs=(x,))[1] < TOL
    with pytest.raises(InputError, match="example input 0 has shape"):
        modelblocks.compile(m, (np.zeros((3, 7), np.float32),))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07\x12\x03abc" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="corrupt.onnx is not a readable ONNX model"):
        modelblocks.compile(str(bad))
    model, x = MODELS["mlp"]()
    good = _export(model, x, tmp_path / "mlp.onnx", dynamo=False)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(good, "rb").read()[:200])
    with pytest.raises(InputError, match="truncated.onnx"):
        modelblocks.compile(str(truncated))
    with pytest.raises(InputError, match="does not exist"):
        modelblocks.compile(str(tmp_path / "missing.onnx"))
