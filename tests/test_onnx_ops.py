"""ONNX converters beyond the basics: LSTM / GRU / RNN, Resize / Upsample, ConvTranspose, PRelu,
Instance- and GroupNormalization, Gather with run-time indices, Where and the comparisons / logic
ops, Expand, Tile, ArgMax / ArgMin, Sum / Mean, HardSigmoid, DepthToSpace / SpaceToDepth and the
folded ConstantOfShape / Range / Shape. Each model is compiled to host C and compared with
onnxruntime (float: relative L2 < 1e-5; integer and bool outputs: equal), PyTorch too where it was
the source; each refusal is checked for its error type and for naming the op, node and attribute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import modelblocks
from modelblocks.errors import UnsupportedOpError
from modelblocks.metrics import rel_l2

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOL = 1e-5
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _model(nodes, inputs, outputs, inits=(), opset=17):
    """inputs: [(name, shape)] float32 or [(name, shape, elem_type)]; outputs: float32 names or (name,
    elem_type); inits: {name: array}."""
    ins = [helper.make_tensor_value_info(i[0], i[2] if len(i) > 2 else FLOAT, i[1]) for i in inputs]
    outs = [helper.make_tensor_value_info(*((o, FLOAT) if isinstance(o, str) else o), None) for o in outputs]
    graph = helper.make_graph(nodes, "g", ins, outs,
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ort(model, feeds):
    if not isinstance(model, str) and any(a.name == "layout" and a.i == 1 for n in model.graph.node
                                          for a in n.attribute):
        # onnxruntime's CPU LSTM / GRU / RNN do not implement layout=1; onnx's reference evaluator does
        from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

        sess = ReferenceEvaluator(model)
        return sess.run(None, {i.name: x for i, x in zip(model.graph.input, feeds)})
    data = model if isinstance(model, str) else model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), feeds)})


def _compile_and_run(model, feeds):
    """(compiled, onnxruntime's outputs, the NumPy interpreter's, the host C's)."""
    compiled = modelblocks.compile(model)
    return compiled, _ort(model, feeds), compiled.run_reference(feeds), compiled.run_c(feeds)


def _worst(want, *results):
    """Worst relative L2 of each result list against `want` (shapes must agree; integer and bool outputs
    must be equal, which counts as 0)."""
    errors = []
    for got in results:
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape, (g.shape, w.shape)
            if w.dtype.kind in "biu":
                errors.append(0.0 if np.array_equal(g.astype(np.int64), w.astype(np.int64)) else np.inf)
            else:
                errors.append(rel_l2(g, w))
    return max(errors)


def _export(model, args, path, dynamo: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, args, str(path), dynamo=dynamo, **({} if dynamo else {"opset_version": 17}))
        except ImportError as exc:  # the dynamo exporter needs onnxscript
            pytest.skip(f"torch.onnx.export(dynamo={dynamo}) cannot run here: {exc}")
    return str(path)


def _op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def _refusal(model) -> str:
    """The text of the UnsupportedOpError compiling `model` raises."""
    with pytest.raises(UnsupportedOpError) as err:
        modelblocks.compile(model)
    return str(err.value)


# -- recurrent layers exported from PyTorch -----------------------------------------------------------

class _Recurrent(nn.Module):
    def __init__(self, cls, **kw):
        super().__init__()
        self.rnn = cls(5, 6, **kw)

    def forward(self, x):
        y, h = self.rnn(x)
        return (y, *h) if isinstance(h, tuple) else (y, h)


RECURRENT = {
    "lstm_2layer_bidirectional": (nn.LSTM, {"num_layers": 2, "bidirectional": True}),
    "gru_batch_first": (nn.GRU, {"batch_first": True}),
    "rnn_relu_bidirectional": (nn.RNN, {"nonlinearity": "relu", "bidirectional": True}),
    "lstm_batch_first_bidirectional": (nn.LSTM, {"batch_first": True, "bidirectional": True}),
}


@pytest.mark.parametrize("name,dynamo", [("lstm_2layer_bidirectional", False), ("gru_batch_first", False),
                                         ("rnn_relu_bidirectional", False), ("gru_batch_first", True),
                                         ("lstm_batch_first_bidirectional", True), ("rnn_relu_bidirectional", True)])
def test_torch_recurrent_export(name, dynamo, tmp_path):
    torch.manual_seed(0)
    cls, kw = RECURRENT[name]
    model, x = _Recurrent(cls, **kw).eval(), torch.randn(3, 4, 5)
    path = _export(model, (x,), tmp_path / f"{name}.onnx", dynamo)
    # one ONNX LSTM / GRU / RNN node per layer, except the dynamo exporter's RNN: unrolled in time, its
    # reverse direction reading the input through a Slice with step -1
    unrolled = dynamo and cls is nn.RNN
    assert (cls.__name__ in _op_types(path)) != unrolled
    with torch.no_grad():
        expected = [t.numpy() for t in model(x)]
    compiled, want, ref, got = _compile_and_run(path, [x.numpy()])
    assert _worst(want, ref, got) < TOL
    assert _worst(expected, got) < TOL
    assert compiled.graph.ops_count().get(cls.__name__.lower(), 0) == (0 if unrolled else kw.get("num_layers", 1))


# -- recurrent layers built by hand: direction, layout, states, sequence_lens ---------------------------

def _recurrent_node(op, *, hidden=4, dirs=1, inputs=5, seed=0, bias=True, **attrs):
    """(initializers, W/R/B names) for an ONNX LSTM / GRU / RNN with `dirs` directions."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    inits = {"W": _rand(dirs, gates * hidden, inputs, seed=seed) * 0.5,
             "R": _rand(dirs, gates * hidden, hidden, seed=seed + 1) * 0.5}
    if bias:
        inits["B"] = _rand(dirs, 2 * gates * hidden, seed=seed + 2) * 0.5
    return inits


@pytest.mark.parametrize("case", ["lstm_reverse_states_as_inputs", "gru_bidirectional_layout1_const_state",
                                  "rnn_forward_no_bias_full_seq_lens", "lstm_bidirectional_layout1_states"])
def test_hand_built_recurrent(case):
    seq, batch, hidden = 3, 2, 4
    feeds = [_rand(seq, batch, 5, seed=10)]
    inputs = [("x", [seq, batch, 5])]
    outputs = ["y", "y_h"]
    if case == "lstm_reverse_states_as_inputs":
        inits = _recurrent_node("LSTM")
        node = helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "y_h", "y_c"], name="/enc/LSTM",
                                hidden_size=hidden, direction="reverse")
        inputs += [("h0", [1, batch, hidden]), ("c0", [1, batch, hidden])]
        feeds += [_rand(1, batch, hidden, seed=11), _rand(1, batch, hidden, seed=12)]
        outputs.append("y_c")
    elif case == "gru_bidirectional_layout1_const_state":
        inits = _recurrent_node("GRU", dirs=2)
        inits["h0"] = _rand(batch, 2, hidden, seed=13)  # layout 1: [batch, directions, hidden]
        node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "y_h"], hidden_size=hidden,
                                direction="bidirectional", layout=1, linear_before_reset=1)
        inputs, feeds = [("x", [batch, seq, 5])], [_rand(batch, seq, 5, seed=10)]
    elif case == "rnn_forward_no_bias_full_seq_lens":
        inits = _recurrent_node("RNN", bias=False)
        inits["lens"] = np.full(batch, seq, np.int32)
        node = helper.make_node("RNN", ["x", "W", "R", "", "lens"], ["y", "y_h"], hidden_size=hidden,
                                activations=["Tanh"])
    else:
        inits = _recurrent_node("LSTM", dirs=2)
        node = helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "y_h", "y_c"], hidden_size=hidden,
                                direction="bidirectional", layout=1)
        inputs = [("x", [batch, seq, 5]), ("h0", [batch, 2, hidden]), ("c0", [batch, 2, hidden])]
        feeds = [_rand(batch, seq, 5, seed=10), _rand(batch, 2, hidden, seed=11), _rand(batch, 2, hidden, seed=12)]
        outputs.append("y_c")
    m = _model([node], inputs, outputs, inits, opset=14)
    _compiled, want, ref, got = _compile_and_run(m, feeds)
    assert _worst(want, ref, got) < TOL


@pytest.mark.parametrize("op,attrs,extra,needle", [
    ("GRU", {}, {}, "linear_before_reset=0"),
    ("LSTM", {"activations": ["Sigmoid", "Relu", "Tanh"]}, {}, "activations="),
    ("LSTM", {"clip": 3.0}, {}, "clip=3.0"),
    ("LSTM", {"input_forget": 1}, {}, "input_forget=1"),
    ("RNN", {}, {"lens": np.array([3, 2], np.int32)}, "sequence_lens"),
    ("LSTM", {}, {"P": np.ones((1, 12), np.float32)}, "peephole"),
])
def test_recurrent_refusals(op, attrs, extra, needle):
    inits = {**_recurrent_node(op), **extra}
    ins = ["x", "W", "R", "B", "lens" if "lens" in extra else ""]
    if "P" in extra:
        ins += ["", "", "P"]
    node = helper.make_node(op, ins, ["y"], name=f"/enc/{op}", hidden_size=4, **attrs)
    text = _refusal(_model([node], [("x", [3, 2, 5])], ["y"], inits, opset=14))
    assert all(name in text for name in (op, "/enc/" + op, needle)), text  # op type, node, attribute


# -- Resize / Upsample ----------------------------------------------------------------------------------

RESIZES = [  # (mode, coordinate_transformation_mode, nearest_mode, "scales" | "sizes", values)
    ("nearest", "half_pixel", "round_prefer_floor", "scales", [1, 1, 2, 3]),
    ("nearest", "asymmetric", "floor", "sizes", [1, 2, 9, 16]),
    ("nearest", "half_pixel", "round_prefer_ceil", "scales", [1, 1, 1.5, 0.5]),
    ("nearest", "tf_half_pixel_for_nn", "floor", "sizes", [1, 2, 9, 16]),
    ("linear", "half_pixel", "floor", "scales", [1, 1, 1.5, 0.5]),
    ("linear", "pytorch_half_pixel", "floor", "sizes", [1, 2, 9, 4]),
    ("linear", "align_corners", "floor", "sizes", [1, 2, 9, 16]),
]


def _resize_node(out, mode, coords, nearest, kind, name="/up/Resize", **extra):
    ins = ["x", "", f"{out}_v", ""] if kind == "scales" else ["x", "", "", f"{out}_v"]
    return helper.make_node("Resize", ins, [out], name=name, mode=mode, coordinate_transformation_mode=coords,
                            nearest_mode=nearest, **extra)


def _resize_value(kind, values):
    return np.array(values, np.float32 if kind == "scales" else np.int64)


def test_resize_modes_match_onnxruntime():
    """Every transform the IR's upsample tables reproduce exactly, in one model (one output each)."""
    nodes, inits = [], {}
    for k, (mode, coords, nearest, kind, values) in enumerate(RESIZES):
        nodes.append(_resize_node(f"y{k}", mode, coords, nearest, kind, name=f"r{k}"))
        inits[f"y{k}_v"] = _resize_value(kind, values)
    m = _model(nodes, [("x", [1, 2, 5, 7])], [f"y{k}" for k in range(len(RESIZES))], inits, opset=13)
    compiled, want, ref, got = _compile_and_run(m, [_rand(1, 2, 5, 7)])
    assert _worst(want, ref, got) < TOL
    assert compiled.graph.ops_count()["upsample"] == len(RESIZES)


def test_upsample_opsets_7_9_and_resize_opset10():
    nodes = [helper.make_node("Upsample", ["x", "s"], ["y0"], mode="nearest")]
    m9 = _model(nodes, [("x", [1, 2, 3, 4])], ["y0"], {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9)
    m10 = _model([helper.make_node("Resize", ["x", "s"], ["y"], mode="nearest")], [("x", [1, 2, 3, 4])], ["y"],
                 {"s": np.array([1, 1, 3, 2], np.float32)}, opset=10)
    m7 = _model([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0])], [("x", [1, 2, 3, 4])],
                ["y"], opset=7)
    for m in (m7, m9, m10):
        _compiled, want, ref, got = _compile_and_run(m, [_rand(1, 2, 3, 4)])
        assert _worst(want, ref, got) < TOL


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_interpolate_export(dynamo, tmp_path):
    class Up(nn.Module):
        def forward(self, x):
            return (F.interpolate(x, scale_factor=2, mode="nearest"),
                    F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False),
                    F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True))

    x = torch.randn(1, 3, 4, 6)
    path = _export(Up(), (x,), tmp_path / "up.onnx", dynamo)
    with torch.no_grad():
        expected = [t.numpy() for t in Up()(x)]
    _compiled, want, ref, got = _compile_and_run(path, [x.numpy()])
    assert _worst(want, ref, got) < TOL
    assert _worst(expected, got) < TOL


@pytest.mark.parametrize("mode,coords,nearest,extra,needle", [
    ("nearest", "align_corners", "round_prefer_floor", {}, "coordinate_transformation_mode='align_corners'"),
    ("nearest", "half_pixel", "floor", {}, "nearest_mode='floor'"),
    ("linear", "asymmetric", "floor", {}, "coordinate_transformation_mode='asymmetric'"),
    ("cubic", "half_pixel", "floor", {}, "mode='cubic'"),
    ("linear", "half_pixel", "floor", {"antialias": 1}, "antialias=1"),
    ("nearest", "tf_crop_and_resize", "floor", {}, "tf_crop_and_resize"),
])
def test_resize_refusals(mode, coords, nearest, extra, needle):
    m = _model([_resize_node("y", mode, coords, nearest, "scales", **extra)], [("x", [1, 2, 5, 7])], ["y"],
               {"y_v": np.array([1, 1, 2, 0.5], np.float32)}, opset=18)
    text = _refusal(m)
    assert all(name in text for name in ("Resize", "/up/Resize", needle)), text  # op type, node, attribute


def test_upsample_linear_is_refused():
    # Upsample's linear mode maps with asymmetric coordinates: not a PyTorch bilinear rule
    m = _model([helper.make_node("Upsample", ["x", "s"], ["y"], name="/up/Upsample", mode="linear")],
               [("x", [1, 2, 3, 4])], ["y"], {"s": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    text = _refusal(m)
    assert all(name in text for name in ("Upsample", "/up/Upsample", "coordinate_transformation_mode='asymmetric'")), text  # op type, node, attribute


def test_resize_of_batch_or_channels_is_refused():
    m = _model([_resize_node("y", "nearest", "asymmetric", "floor", "scales")], [("x", [1, 2, 5, 7])], ["y"],
               {"y_v": np.array([1, 2, 1, 1], np.float32)}, opset=13)
    text = _refusal(m)
    assert all(name in text for name in ("Resize", "/up/Resize", "last 1 or 2 dimensions")), text  # op type, node, attribute


# -- ConvTranspose, PRelu, InstanceNormalization, GroupNormalization ------------------------------------

class _Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.act = nn.PReLU(6)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.gnorm = nn.GroupNorm(3, 6)
        self.up1d = nn.ConvTranspose1d(6, 2, 4, stride=3, padding=2, dilation=2)
        self.act1 = nn.PReLU()

    def forward(self, x):
        y = self.gnorm(self.inorm(self.act(self.up(x))))
        return self.act1(self.up1d(y.flatten(2)))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_decoder_export(dynamo, tmp_path):
    torch.manual_seed(0)
    model = _Decoder().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # non-trivial affines and slopes
    x = torch.randn(1, 4, 3, 5)
    path = _export(model, (x,), tmp_path / "decoder.onnx", dynamo)
    with torch.no_grad():
        expected = [model(x).numpy()]
    compiled, want, ref, got = _compile_and_run(path, [x.numpy()])
    assert _worst(want, ref, got) < TOL
    assert _worst(expected, got) < TOL
    counts = compiled.graph.ops_count()
    assert counts["conv_transpose"] == 2 and counts["prelu"] == 2 and counts["group_norm"] >= 1, counts


def test_conv_transpose_asymmetric_pads_and_norms_by_hand():
    """ConvTranspose with begin pads larger than end pads, InstanceNormalization, GroupNormalization in
    opset 18 (scale / bias per group) and PRelu with a [C, 1, 1] slope."""
    inits = {"w": _rand(3, 4, 3, 2, seed=1), "b": _rand(4, seed=2), "s": _rand(4, seed=3), "t": _rand(4, seed=4),
             "gs": _rand(2, seed=5), "gb": _rand(2, seed=6), "slope": _rand(4, 1, 1, seed=7)}
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["ct"], strides=[2, 1], pads=[2, 1, 0, 0],
                              output_padding=[1, 0], dilations=[1, 2]),
             helper.make_node("InstanceNormalization", ["ct", "s", "t"], ["in"], epsilon=1e-3),
             helper.make_node("GroupNormalization", ["in", "gs", "gb"], ["gn"], num_groups=2, epsilon=1e-4),
             helper.make_node("PRelu", ["gn", "slope"], ["y"])]
    m = _model(nodes, [("x", [1, 3, 4, 5])], ["y"], inits, opset=18)
    compiled, want, ref, got = _compile_and_run(m, [_rand(1, 3, 4, 5)])
    assert _worst(want, ref, got) < TOL
    assert compiled.graph.ops_count()["group_norm"] == 2


def test_group_normalization_opset21_per_channel():
    inits = {"gs": _rand(6, seed=5), "gb": _rand(6, seed=6)}
    m = _model([helper.make_node("GroupNormalization", ["x", "gs", "gb"], ["y"], num_groups=3)],
               [("x", [2, 6, 4])], ["y"], inits, opset=21)
    try:
        want = _ort(m, [_rand(2, 6, 4)])
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"this onnxruntime cannot run GroupNormalization-21: {exc}")
    compiled = modelblocks.compile(m)
    feeds = [_rand(2, 6, 4)]
    assert _worst(want, compiled.run_reference(feeds), compiled.run_c(feeds)) < TOL


@pytest.mark.parametrize("attrs,needle", [
    ({"output_shape": [9, 5]}, "output_shape"),
    ({"auto_pad": "SAME_UPPER"}, "auto_pad='SAME_UPPER'"),
    ({"pads": [0, 0, 2, 0]}, "pads=[0, 0, 2, 0]"),
])
def test_conv_transpose_refusals(attrs, needle):
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="/dec/ConvTranspose", strides=[2, 1], **attrs)
    m = _model([node], [("x", [1, 3, 4, 5])], ["y"], {"w": _rand(3, 4, 3, 2)})
    text = _refusal(m)
    assert all(name in text for name in ("ConvTranspose", "/dec/ConvTranspose", needle)), text  # op type, node, attribute


def test_prelu_slope_along_the_last_dim_is_refused():
    # ONNX broadcasts a [C] slope from the right: along W, not along the channels
    m = _model([helper.make_node("PRelu", ["x", "slope"], ["y"], name="/act/PRelu")], [("x", [1, 5, 3, 5])], ["y"],
               {"slope": _rand(5)})
    text = _refusal(m)
    assert all(name in text for name in ("PRelu", "/act/PRelu", "slope of shape [5]")), text  # op type, node, attribute


# -- Gather with run-time indices, Where, comparisons, logic -------------------------------------------

class _Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)

    def forward(self, tokens):
        e = self.emb(tokens)
        return torch.where(e > 0.2, e, -e)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_embedding_export(dynamo, tmp_path):
    torch.manual_seed(0)
    model, tokens = _Tagger().eval(), torch.tensor([[1, 9, 0, 4], [3, 3, 7, 2]])
    path = _export(model, (tokens,), tmp_path / "emb.onnx", dynamo)
    with torch.no_grad():
        expected = [model(tokens).numpy()]
    compiled, want, ref, got = _compile_and_run(path, [tokens.numpy()])
    assert _worst(want, ref, got) < TOL and _worst(expected, got) < TOL
    assert compiled.graph.ops_count()["embedding"] == 1


def test_gather_logic_and_selection_by_hand():
    """Gather of a run-time index tensor along axis 1 of a 3-D activation, Equal on int indices, the
    float comparisons, Not / And / Or / Xor, and Where."""
    nodes = [helper.make_node("Gather", ["x", "idx"], ["g"], axis=1, name="/pick/Gather"),  # [2, 2, 3, 4]
             helper.make_node("Equal", ["idx", "two"], ["is2"]),                          # [2, 3] bool
             helper.make_node("Greater", ["x", "zero"], ["gt"]),
             helper.make_node("LessOrEqual", ["x", "half"], ["le"]),
             helper.make_node("GreaterOrEqual", ["x", "y"], ["ge"]),
             helper.make_node("Less", ["x", "y"], ["lt"]),
             helper.make_node("And", ["gt", "le"], ["band"]),
             helper.make_node("Or", ["band", "lt"], ["bor"]),
             helper.make_node("Xor", ["bor", "ge"], ["bxor"]),
             helper.make_node("Not", ["bxor"], ["mask"]),
             helper.make_node("Where", ["mask", "x", "y"], ["sel"])]
    inits = {"two": np.array(2, np.int64), "zero": np.array(0, np.float32), "half": np.array(0.5, np.float32)}
    m = _model(nodes, [("x", [2, 5, 4]), ("y", [5, 4]), ("idx", [2, 3], INT64)],
               ["g", ("is2", BOOL), ("mask", BOOL), "sel"], inits)
    feeds = [_rand(2, 5, 4, seed=1), _rand(5, 4, seed=2), np.array([[0, 4, 2], [1, 1, 3]], np.int64)]
    compiled, want, ref, got = _compile_and_run(m, feeds)
    assert _worst(want, ref, got) < TOL
    # negative indices count from the end, as onnxruntime does
    feeds[2] = np.array([[-1, -5, 2], [-2, 1, -3]], np.int64)
    _, want, ref, got = _compile_and_run(m, feeds)
    assert _worst(want, ref, got) < TOL
    counts = compiled.graph.ops_count()
    assert counts["embedding"] == 1 and counts["compare"] == 5 and counts["logical"] == 3, counts


def test_isnan_masks_the_nans():
    """IsNaN, as the TorchScript exporter writes it for scaled_dot_product_attention with a mask."""
    nodes = [helper.make_node("IsNaN", ["x"], ["nan"], name="/IsNaN"),
             helper.make_node("Where", ["nan", "zero", "x"], ["clean"], name="/Where")]
    m = _model(nodes, [("x", [3, 4])], [("nan", BOOL), "clean"], {"zero": np.zeros((), np.float32)})
    x = _rand(3, 4, seed=3)
    x[0, 1] = x[2, 3] = np.nan
    compiled, want, ref, got = _compile_and_run(m, [x])
    np.testing.assert_array_equal(got[0], np.isnan(x))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(ref[1], want[1])
    np.testing.assert_array_equal(got[1], want[1])  # the NaN replaced, nothing else touched
    assert compiled.graph.ops_count()["compare"] == 1


def test_gather_with_float_indices_is_refused():
    m = _model([helper.make_node("Gather", ["x", "idx"], ["y"], name="/emb/Gather")],
               [("x", [4, 3]), ("idx", [2])], ["y"])
    text = _refusal(m)
    assert all(name in text for name in ("Gather", "/emb/Gather", "indices of dtype float32")), text  # op type, node, attribute


def test_comparison_of_mixed_dtypes_is_refused():
    m = _model([helper.make_node("Equal", ["x", "i"], ["y"], name="/cmp/Equal")],
               [("x", [4]), ("i", [4], INT64)], ["y"])
    text = _refusal(m)
    assert all(name in text for name in ("Equal", "/cmp/Equal", "float32 with int32")), text  # op type, node, attribute


# -- shape and reduction ops ---------------------------------------------------------------------------

def test_shape_ops_reductions_and_folding():
    """Expand, Tile, DepthToSpace (DCR and CRD), SpaceToDepth, ArgMax / ArgMin, Sum / Mean, HardSigmoid
    (ONNX's default alpha 0.2 and PyTorch's 1/6), Slice with negative steps, and a
    ConstantOfShape(Shape(x)) + Range folded at compile time."""
    nodes = [helper.make_node("Expand", ["v", "eshape"], ["ex"]),                     # [3, 1] -> [2, 3, 4]
             helper.make_node("Tile", ["x", "reps"], ["tile"]),
             helper.make_node("DepthToSpace", ["x"], ["d2s"], blocksize=2),            # DCR
             helper.make_node("DepthToSpace", ["x"], ["d2s_crd"], blocksize=2, mode="CRD"),
             helper.make_node("SpaceToDepth", ["d2s"], ["s2d"], blocksize=2),
             helper.make_node("ArgMax", ["x"], ["amax"], axis=1),
             helper.make_node("ArgMin", ["x"], ["amin"], axis=-1, keepdims=0),
             helper.make_node("Shape", ["x"], ["xs"]),
             helper.make_node("ConstantOfShape", ["xs"], ["ones"],
                              value=numpy_helper.from_array(np.array([0.25], np.float32))),
             helper.make_node("Range", ["r0", "r1", "r2"], ["ramp"]),                 # [0, 0.5, 1, 1.5, 2, 2.5]
             helper.make_node("Sum", ["x", "ones", "ramp"], ["sum"]),
             helper.make_node("Mean", ["x", "sum", "ex2"], ["mean"]),
             helper.make_node("HardSigmoid", ["mean"], ["hs"]),
             helper.make_node("HardSigmoid", ["mean"], ["hs_torch"], alpha=1.0 / 6.0, beta=0.5),
             helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["back"])]  # negative steps
    inits = {"v": _rand(3, 1, seed=3), "eshape": np.array([2, 1, 4], np.int64),
             "reps": np.array([1, 2, 1, 3], np.int64),
             "r0": np.array(0, np.float32), "r1": np.array(3, np.float32), "r2": np.array(0.5, np.float32),
             "ex2": _rand(1, 4, 1, seed=4), "starts": np.array([-1, -1, 5], np.int64),
             "ends": np.array([-100, -2**63, 0], np.int64), "axes": np.array([1, 2, 3], np.int64),
             "steps": np.array([-2, -1, -1], np.int64)}
    outs = ["ex", "tile", "d2s", "d2s_crd", "s2d", ("amax", INT64), ("amin", INT64), "hs", "hs_torch", "back"]
    m = _model(nodes, [("x", [2, 8, 4, 6])], outs, inits)
    compiled, want, ref, got = _compile_and_run(m, [_rand(2, 8, 4, 6, seed=5) * 3])
    assert _worst(want, ref, got) < TOL
    counts = compiled.graph.ops_count()
    assert counts["pixel_shuffle"] == 1 and counts["argmax"] == 1 and counts["argmin"] == 1, counts
    assert counts["hardsigmoid"] == 1 and counts["repeat"] == 1, counts


@pytest.mark.parametrize("node,needle", [
    (helper.make_node("ArgMax", ["x"], ["y"], name="/head/ArgMax", select_last_index=1), "select_last_index=1"),
    (helper.make_node("DepthToSpace", ["x"], ["y"], name="/head/DepthToSpace", blocksize=2, mode="XYZ"),
     "mode='XYZ'"),
    (helper.make_node("Tile", ["x", "bad_reps"], ["y"], name="/head/Tile"), "repeats [1, 2]"),
])
def test_shape_op_refusals(node, needle):
    m = _model([node], [("x", [1, 8, 2, 2])], ["y"], {"bad_reps": np.array([1, 2], np.int64)})
    text = _refusal(m)
    assert all(name in text for name in (node.op_type, node.name, needle)), text  # op type, node, attribute


# -- pooling with ceil_mode (found by tests/test_fuzz_onnx.py) ------------------------------------------

@pytest.mark.parametrize("opset", [17, 22])
def test_ceil_mode_pool_drops_a_window_starting_in_the_padding(opset):
    # onnx.shape_inference before opset 22 says a ceil_mode pool of length 2 (kernel 1, stride 2) gives 2
    # values, onnxruntime / PyTorch / onnx.reference compute 1: the frontend used to take its own correct
    # shape for a converter bug (GraphError) at the pool and at every node after it
    nodes = [helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[1, 3], strides=[2, 2], ceil_mode=1),
             helper.make_node("AveragePool", ["x"], ["ap"], kernel_shape=[3, 1], strides=[2, 3], pads=[1, 0, 1, 0],
                              ceil_mode=1, count_include_pad=0),
             helper.make_node("Relu", ["mp"], ["after"]),
             helper.make_node("ReduceSum", ["ap"], ["total"], keepdims=1)]
    m = _model(nodes, [("x", [1, 2, 4, 5])], ["after", "total"], opset=opset)
    x = _rand(1, 2, 4, 5, seed=7)
    compiled, want, ref, got = _compile_and_run(m, [x])
    assert [w.shape for w in want] == [(1, 2, 2, 2), (1, 1, 1, 1)]
    assert _worst(want, ref, got) < TOL
    with torch.no_grad():  # PyTorch agrees on the shape and the values
        expected = F.relu(F.max_pool2d(torch.from_numpy(x), (1, 3), (2, 2), ceil_mode=True)).numpy()
    assert rel_l2(got[0], expected) < TOL


# -- Pad mode wrap (found by the dynamo-exporter fuzz family: circular padding) ---------------------------

def test_pad_wrap_is_circular_padding():
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], name="/pad/Pad", mode="wrap")]
    m = _model(nodes, [("x", [1, 2, 3, 4])], ["y"], {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 3], np.int64)},
               opset=19)
    x = _rand(1, 2, 3, 4, seed=9)
    compiled, want, ref, got = _compile_and_run(m, [x])
    assert want[0].shape == (1, 2, 6, 9)
    assert _worst(want, ref, got) < TOL
    expected = F.pad(torch.from_numpy(x), (2, 3, 1, 2), mode="circular").numpy()
    np.testing.assert_array_equal(got[0], expected)  # a gather: the same values, moved
    assert compiled.graph.ops_count() == {"pad": 1}
