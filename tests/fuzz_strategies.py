"""Hypothesis strategies that draw small random models ("recipes") from ModelBlocks' op set.

A recipe is plain data (dicts, lists, numbers) so that a failure prints something one can paste
into `build(recipe)` to get the same nn.Module and inputs back: weights and input values come from
the recipe's `seed`, not from hypothesis, which keeps examples cheap to draw and to shrink.
tests/test_fuzz.py runs these strategies bounded and derandomized; bench/fuzz_soak.py runs them long.

Families (the `family` key):
  chain      Conv1d/Conv2d, ConvTranspose1d/2d, pooling, BatchNorm, GroupNorm, LayerNorm, PReLU,
             activations, F.pad (constant incl. cropping / reflect / replicate / circular),
             nn.Upsample (nearest, nearest-exact, (bi)linear), flatten + Linear; `int8=True` draws only
             ops with an int8 lowering.
  binary     add/sub/mul/div/maximum/minimum over inputs, constants and Python scalars whose shapes
             broadcast (missing leading dims, size-1 dims), with unary ops in between.
  layout     reshape/permute/slice/cat/split/softmax/log_softmax/reductions/matmul with broadcast
             batch dims against a constant or a second input; may return several outputs.
  rnn        LSTM/GRU/RNN (tanh, relu): sequence length, hidden size, layers, bidirectional,
             batch_first, projection, given initial state.
  attention  F.scaled_dot_product_attention, 3-D or 4-D, cross lengths, causal or not, custom scale,
             a float additive mask (with -inf entries) or a bool mask broadcast over batch and heads;
             or nn.MultiheadAttention (kdim/vdim, batch_first, masks, averaged attention weights).
  sequence   token models on [B, L, D]: Linear, LayerNorm, softmax, activations, activation x
             activation matmuls (y @ y^T, y @ second input), multi-head self-attention, residual
             blocks, Conv1d over the tokens; `int8=True` leaves out what has no int8 form (masks,
             causal attention, log_softmax).
  embedding  nn.Embedding on int64 indices (in range: PyTorch refuses negative ones), then a
             sequence-family stack.

Shapes stay small (every tensor below MAX_NUMEL elements) so one example compiles and runs in C in
well under a second.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

MAX_NUMEL = 4096

# Activations by constructor; every one is an nn.Module so a chain stays an nn.Sequential.
FLOAT_ACTS = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "leaky_relu": lambda: nn.LeakyReLU(0.1), "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "hardtanh": lambda: nn.Hardtanh(-0.5, 0.7),
    "elu": nn.ELU, "selu": nn.SELU, "softplus": nn.Softplus, "mish": nn.Mish, "identity": nn.Identity,
    "dropout": lambda: nn.Dropout(0.3),
}
# Those with an int8 lowering (ops/q_lut.py, or folded into the producer's clamp).
INT8_ACTS = ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "hardsigmoid", "elu")

UNARY = {  # elementwise functions for the binary family (safe on any finite input)
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "abs": torch.abs, "neg": torch.neg,
    "square": lambda x: x ** 2, "exp_small": lambda x: torch.exp(x * 0.25), "sin": torch.sin,
    "clamp": lambda x: torch.clamp(x, -0.6, 0.9), "erf": torch.erf,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul,
    # torch.maximum/minimum take no Python scalar: clamp is their scalar form
    "maximum": lambda a, b: torch.maximum(a, b) if isinstance(b, torch.Tensor) else torch.clamp_min(a, b),
    "minimum": lambda a, b: torch.minimum(a, b) if isinstance(b, torch.Tensor) else torch.clamp_max(a, b),
    # the divisor is kept away from zero: the property is about broadcasting, not about 1/0
    "div": lambda a, b: a / (b.abs() + 0.5) if isinstance(b, torch.Tensor) else a / (abs(b) + 0.5),
}


# -- building ----------------------------------------------------------------------------------------

def make_layer(spec: dict) -> nn.Module:
    """One chain layer from its spec (see `chain_recipes` for the keys)."""
    op = spec["op"]
    if op == "conv":
        cls = nn.Conv1d if spec["dim"] == 1 else nn.Conv2d
        return cls(spec["cin"], spec["cout"], spec["k"], stride=spec["stride"], padding=spec["padding"],
                   dilation=spec["dilation"], groups=spec["groups"], bias=spec["bias"])
    if op == "conv_transpose":
        cls = nn.ConvTranspose1d if spec["dim"] == 1 else nn.ConvTranspose2d
        return cls(spec["cin"], spec["cout"], spec["k"], stride=spec["stride"], padding=spec["padding"],
                   output_padding=spec["output_padding"], dilation=spec["dilation"], groups=spec["groups"],
                   bias=spec["bias"])
    if op in ("max_pool", "avg_pool"):
        d = spec["dim"]
        if op == "max_pool":
            cls = nn.MaxPool1d if d == 1 else nn.MaxPool2d
            return cls(spec["k"], spec["stride"], spec["padding"], ceil_mode=spec["ceil_mode"])
        cls = nn.AvgPool1d if d == 1 else nn.AvgPool2d
        return cls(spec["k"], spec["stride"], spec["padding"], ceil_mode=spec["ceil_mode"],
                   count_include_pad=spec["count_include_pad"])
    if op in ("adaptive_avg", "adaptive_max"):
        d = spec["dim"]
        cls = {("adaptive_avg", 1): nn.AdaptiveAvgPool1d, ("adaptive_avg", 2): nn.AdaptiveAvgPool2d,
               ("adaptive_max", 1): nn.AdaptiveMaxPool1d, ("adaptive_max", 2): nn.AdaptiveMaxPool2d}[op, d]
        return cls(spec["out"])
    if op == "batch_norm":
        bn = (nn.BatchNorm1d if spec["dim"] == 1 else nn.BatchNorm2d)(spec["c"])
        with torch.no_grad():  # non-trivial running statistics, so folding them is actually tested
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
        return bn
    if op == "group_norm":
        return nn.GroupNorm(spec["groups"], spec["c"], affine=spec["affine"])
    if op == "layer_norm":
        return nn.LayerNorm(spec["shape"], elementwise_affine=spec["affine"])
    if op == "prelu":
        return nn.PReLU(spec["c"], init=0.2)
    if op == "flatten":
        return nn.Flatten()
    if op == "linear":
        return nn.Linear(spec["cin"], spec["cout"], bias=spec["bias"])
    if op == "act":
        return FLOAT_ACTS[spec["fn"]]()
    if op == "pad":
        return Pad(spec["pads"], spec["mode"], spec["value"])
    if op == "upsample":
        return nn.Upsample(size=spec["size"], scale_factor=spec["scale"], mode=spec["mode"],
                           align_corners=spec["align_corners"])
    raise ValueError(f"unknown chain op {op!r}")


class Pad(nn.Module):
    """F.pad as a layer (nn.ConstantPad* takes no negative pads, which crop)."""

    def __init__(self, pads, mode, value):
        super().__init__()
        self.pads, self.mode, self.value = tuple(pads), mode, value

    def forward(self, x):
        return F.pad(x, self.pads, mode=self.mode, value=self.value if self.mode == "constant" else None)


class BinaryModel(nn.Module):
    """y = x0, then y = op(y, operand) (or op(operand, y)) per step, operands being inputs, constant
    buffers or Python scalars; a unary function may follow each step."""

    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe
        for i, operand in enumerate(recipe["operands"]):
            if operand["kind"] == "const":
                self.register_buffer(f"c{i}", torch.randn(operand["shape"]))

    def forward(self, *xs):
        values = []
        n_in = 0
        for i, operand in enumerate(self.recipe["operands"]):
            if operand["kind"] == "input":
                values.append(xs[n_in])
                n_in += 1
            elif operand["kind"] == "const":
                values.append(getattr(self, f"c{i}"))
            else:
                values.append(operand["value"])
        y = values[0]
        for step in self.recipe["steps"]:
            b = values[step["operand"]]
            fn = BINARY[step["op"]]
            y = fn(b, y) if step["swap"] and isinstance(b, torch.Tensor) else fn(y, b)
            if step["unary"]:
                y = UNARY[step["unary"]](y)
        return y


class LayoutModel(nn.Module):
    """Applies the recipe's shape steps to input 0; `split` steps also return their first chunk."""

    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe
        for i, step in enumerate(recipe["steps"]):
            if step["op"] == "matmul" and step["with"] == "const":
                self.register_buffer(f"w{i}", torch.randn(step["shape"]) * 0.5)

    def forward(self, *xs):
        y = xs[0]
        outputs = []
        for i, step in enumerate(self.recipe["steps"]):
            op = step["op"]
            if op == "reshape":
                y = y.reshape(step["shape"])
            elif op == "permute":
                y = y.permute(step["perm"])
            elif op == "slice":
                index = [slice(None)] * y.dim()
                index[step["dim"]] = slice(step["start"], step["stop"], step["step"])
                y = y[tuple(index)]
            elif op == "cat":
                y = torch.cat([y, torch.sigmoid(y)] if step["order"] else [torch.tanh(y), y], dim=step["dim"])
            elif op == "split":
                chunks = torch.split(y, step["size"], dim=step["dim"])
                outputs.append(chunks[0] * 2.0)
                y = torch.cat(chunks[::-1], dim=step["dim"])
            elif op == "softmax":
                y = (F.log_softmax if step["log"] else F.softmax)(y, dim=step["dim"])
            elif op == "reduce":
                y = getattr(y, step["fn"])(dim=step["dim"], keepdim=step["keepdim"])
                if step["fn"] in ("amax", "amin"):
                    y = y * 1.0
            elif op == "matmul":
                w = getattr(self, f"w{i}") if step["with"] == "const" else xs[step["input"]]
                y = torch.matmul(w, y) if step["left"] else torch.matmul(y, w)
            else:
                raise ValueError(f"unknown layout op {op!r}")
        return (y, *outputs) if outputs else y


class RecurrentModel(nn.Module):
    """One nn.LSTM / nn.GRU / nn.RNN; extra inputs are its initial state; returns the output and final state."""

    def __init__(self, recipe: dict):
        super().__init__()
        r = recipe
        kw = dict(input_size=r["input_size"], hidden_size=r["hidden"], num_layers=r["layers"],
                  bidirectional=r["bidirectional"], batch_first=r["batch_first"], bias=r["bias"])
        if r["kind"] == "lstm":
            self.rnn = nn.LSTM(proj_size=r["proj"], **kw)
        elif r["kind"] == "gru":
            self.rnn = nn.GRU(**kw)
        else:  # "rnn_tanh" / "rnn_relu"
            self.rnn = nn.RNN(nonlinearity=r["kind"].removeprefix("rnn_"), **kw)

    def forward(self, x, *state):
        if len(state) == 2:
            out, (h, c) = self.rnn(x, (state[0], state[1]))
            return out, h, c
        out, h = self.rnn(x, state[0]) if state else self.rnn(x)
        return (out, *h) if isinstance(h, tuple) else (out, h)


def attention_mask(kind: str | None, shape: list[int], seed: int, masked_is_true: bool = False):
    """A float additive mask (about a third of it -inf) or a bool mask (True = attend, or = masked
    with `masked_is_true`, nn.MultiheadAttention's convention), with at least one key per query row
    left attended: a row with every key masked is NaN in some PyTorch kernels, which is not the point."""
    if kind is None:
        return None
    gen = torch.Generator().manual_seed(seed)
    keep = torch.zeros(shape, dtype=torch.bool).scatter_(-1, torch.randint(0, shape[-1], (*shape[:-1], 1),
                                                                            generator=gen), True)
    allowed = (torch.rand(shape, generator=gen) < 0.6) | keep
    if kind == "bool":
        return ~allowed if masked_is_true else allowed
    values = torch.randn(shape, generator=gen) * 0.5
    return values.masked_fill(~allowed, -math.inf)


class AttentionModel(nn.Module):
    """F.scaled_dot_product_attention, or one nn.MultiheadAttention (kind "mha"), on inputs q, k, v;
    a mask is a constant buffer."""

    def __init__(self, recipe: dict):
        super().__init__()
        r = self.recipe = recipe
        mha = r.get("kind") == "mha"
        if mha:
            self.mha = nn.MultiheadAttention(r["heads"] * r["head_dim"], r["heads"], bias=r["bias"], kdim=r["kdim"],
                                             vdim=r["vdim"], batch_first=r["batch_first"])
        mask = attention_mask(r.get("mask"), r.get("mask_shape"), r["seed"] + 1, masked_is_true=mha)
        self.register_buffer("mask", mask)

    def forward(self, q, k, v):
        r = self.recipe
        if r.get("kind") == "mha":
            out, weights = self.mha(q, k, v, attn_mask=self.mask, need_weights=r["need_weights"],
                                    average_attn_weights=r["average"])
            return (out, weights) if r["need_weights"] else out
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask, is_causal=r["causal"], scale=r["scale"])


class SequenceModel(nn.Module):
    """Steps on token activations y [B, L, D] (see `sequence_recipes` for the step keys); an
    `embedding` recipe first looks its int64 input up in an nn.Embedding. Layers live in a ModuleDict
    under the step's index, so module paths (and node names) say which step they are."""

    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe
        if recipe["family"] == "embedding":
            self.embed = nn.Embedding(recipe["num"], recipe["dim"], padding_idx=recipe["padding_idx"])
        self.layers = nn.ModuleDict()
        for i, step in enumerate(recipe["steps"]):
            self.layers[str(i)] = self._layer(step)
            if step["op"] == "attention":
                self.register_buffer(f"mask{i}", attention_mask(step["mask"], step["mask_shape"], recipe["seed"] + i))

    @staticmethod
    def _layer(step: dict) -> nn.Module:
        op = step["op"]
        if op == "linear":
            return nn.Linear(step["cin"], step["cout"], bias=step["bias"])
        if op == "layer_norm":
            ln = nn.LayerNorm(step["d"], elementwise_affine=step["affine"])
            if step["affine"]:
                with torch.no_grad():  # not the identity affine of a fresh LayerNorm
                    ln.weight.uniform_(0.5, 1.5)
                    ln.bias.uniform_(-0.3, 0.3)
            return ln
        if op in ("act", "residual"):
            act = FLOAT_ACTS[step["fn"]]()
            return nn.Sequential(nn.Linear(step["d"], step["d"]), act) if op == "residual" else act
        if op == "attention":
            return nn.Linear(step["d"], 3 * step["d"], bias=step["bias"])
        if op == "conv":
            return nn.Conv1d(step["cin"], step["cout"], step["k"], padding=step["k"] // 2)
        return nn.Identity()  # softmax, matmul_self, matmul_input: no parameters

    def forward(self, *xs):
        y = self.embed(xs[0]) if self.recipe["family"] == "embedding" else xs[0]
        for i, step in enumerate(self.recipe["steps"]):
            layer, op = self.layers[str(i)], step["op"]
            if op in ("linear", "layer_norm", "act"):
                y = layer(y)
            elif op == "residual":
                y = y + layer(y)
            elif op == "softmax":
                y = (F.log_softmax if step["log"] else F.softmax)(y, dim=-1)
            elif op == "matmul_self":
                y = torch.matmul(y, y.transpose(-1, -2)) * step["scale"]
            elif op == "matmul_input":
                y = torch.matmul(y, xs[step["input"]])
            elif op == "conv":
                y = layer(y.transpose(1, 2)).transpose(1, 2)
            elif op == "attention":
                b, n, d = y.shape
                h = step["heads"]
                q, k, v = layer(y).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=getattr(self, f"mask{i}"),
                                                   is_causal=step["causal"], scale=step["scale"])
                y = a.transpose(1, 2).reshape(b, n, d)
            else:
                raise ValueError(f"unknown sequence op {op!r}")
        return y


def input_shapes(recipe: dict) -> list[list[int]]:
    family = recipe["family"]
    if family in ("chain", "layout", "binary", "sequence", "embedding"):
        return [list(s) for s in recipe["inputs"]]
    if family == "rnn":
        r = recipe
        x = [r["batch"], r["seq"], r["input_size"]] if r["batch_first"] else [r["seq"], r["batch"], r["input_size"]]
        if not r["state"]:
            return [x]
        n = r["layers"] * (2 if r["bidirectional"] else 1)
        h = [n, r["batch"], r["proj"] or r["hidden"]]
        return [x, h, [n, r["batch"], r["hidden"]]] if r["kind"] == "lstm" else [x, h]
    if family == "attention":
        return [recipe["q"], recipe["k"], recipe["v"]]
    raise ValueError(f"unknown family {family!r}")


def build(recipe: dict) -> nn.Module:
    """The eval-mode nn.Module a recipe describes; its weights come from recipe['seed']."""
    torch.manual_seed(recipe["seed"])
    family = recipe["family"]
    if family == "chain":
        model = nn.Sequential(*(make_layer(spec) for spec in recipe["layers"]))
    elif family == "binary":
        model = BinaryModel(recipe)
    elif family == "layout":
        model = LayoutModel(recipe)
    elif family == "rnn":
        model = RecurrentModel(recipe)
    elif family == "attention":
        model = AttentionModel(recipe)
    elif family in ("sequence", "embedding"):
        model = SequenceModel(recipe)
    else:
        raise ValueError(f"unknown family {family!r}")
    return model.eval()


def make_inputs(recipe: dict, k: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    """Input set number `k` of a recipe (seeded, so reproducible from the recipe alone)."""
    gen = torch.Generator().manual_seed(recipe["seed"] * 1000 + k)
    xs = [torch.randn(s, generator=gen) * scale for s in input_shapes(recipe)]
    if recipe["family"] == "embedding":  # int64 indices, all in range (`scale` does not apply)
        xs[0] = torch.randint(0, recipe["num"], input_shapes(recipe)[0], generator=gen)
    return tuple(xs)


# -- drawing -----------------------------------------------------------------------------------------

seeds = st.integers(0, 2 ** 20)


def _shape_after(module: nn.Module, shape: list[int]) -> list[int] | None:
    """The output shape of `module` on `shape`, or None when torch refuses it or it is too big/empty."""
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except (RuntimeError, ValueError, NotImplementedError):
        return None
    if out.numel() == 0 or out.numel() > MAX_NUMEL:
        return None
    return list(out.shape)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _conv_spec(draw, shape, dim, int8):
    cin = shape[1]
    depthwise = draw(st.booleans())
    if depthwise:
        cout, groups = cin * draw(st.sampled_from([1, 2])), cin
    else:
        groups = draw(st.sampled_from(_divisors(cin)))
        cout = groups * draw(st.integers(1, max(1, 8 // groups)))
    k = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 2))
    stride = draw(st.integers(1, 2))
    padding_kind = draw(st.sampled_from(["int", "same"] if stride == 1 else ["int"]))
    padding = "same" if padding_kind == "same" else draw(st.integers(0, (dilation * (k - 1)) // 2 + 1))
    if dim == 2 and draw(st.booleans()):  # rectangular kernels and per-axis strides
        k = (k, draw(st.integers(1, 3)))
        if padding != "same":
            padding = (padding, draw(st.integers(0, 1)))
        if stride > 1:
            stride = (stride, draw(st.integers(1, 2)))
    spec = dict(op="conv", dim=dim, cin=cin, cout=cout, k=k, stride=stride, padding=padding, dilation=dilation,
                groups=groups, bias=draw(st.booleans()))
    if int8:  # int8 convs here always carry a bias (TFLite's scheme); folding BN gives one too
        spec["bias"] = True
    return spec


@st.composite
def _conv_transpose_spec(draw, shape, dim):
    cin = shape[1]
    groups = draw(st.sampled_from(_divisors(cin)))
    cout = groups * draw(st.integers(1, max(1, 6 // groups)))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, dilation * (k - 1)))
    output_padding = draw(st.integers(0, max(stride, dilation) - 1))
    return dict(op="conv_transpose", dim=dim, cin=cin, cout=cout, k=k, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


@st.composite
def _pool_spec(draw, shape, dim):
    op = draw(st.sampled_from(["max_pool", "avg_pool", "adaptive_avg", "adaptive_max"]))
    spatial = shape[2:]
    if op.startswith("adaptive"):
        out = [draw(st.integers(1, s)) for s in spatial]
        return dict(op=op, dim=dim, out=out[0] if dim == 1 else out)
    k = draw(st.integers(1, 3))
    return dict(op=op, dim=dim, k=k, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, k // 2)),
                ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))


@st.composite
def _pad_spec(draw, shape, dim):
    """F.pad of the spatial dims; constant mode may also crop (negative pads)."""
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    low = -1 if mode == "constant" else 0
    pads = [draw(st.integers(low, 2)) for _ in range(2 * dim)]
    value = draw(st.sampled_from([0.0, -1.5, 2.0])) if mode == "constant" else 0.0
    return dict(op="pad", pads=pads, mode=mode, value=value)


@st.composite
def _upsample_spec(draw, shape, dim):
    """nn.Upsample by a scale factor (integer or not) or to a size, nearest or (bi)linear."""
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear"]))
    if mode == "linear" and dim == 2:
        mode = "bilinear"
    align = draw(st.booleans()) if mode in ("linear", "bilinear") else None
    if draw(st.booleans()):
        size = [draw(st.integers(1, 2 * s + 1)) for s in shape[2:]]
        return dict(op="upsample", mode=mode, align_corners=align, scale=None, size=size[0] if dim == 1 else size)
    scale = draw(st.sampled_from([2.0, 3.0, 1.5, 0.5]))
    return dict(op="upsample", mode=mode, align_corners=align, scale=scale, size=None)


@st.composite
def _norm_or_act_spec(draw, shape, int8):
    c = shape[1]
    # int8: a lone BatchNorm has no int8 lowering (it stays float32 between quantize/dequantize, where
    # C and NumPy may differ in the last bit), so int8 chains only get BatchNorm folded into a conv
    ops = ["act"] if int8 else ["act", "act", "batch_norm", "group_norm", "layer_norm", "prelu"]
    op = draw(st.sampled_from(ops))
    if op == "act":
        return dict(op="act", fn=draw(st.sampled_from(INT8_ACTS if int8 else sorted(FLOAT_ACTS))))
    if op == "batch_norm":
        return dict(op="batch_norm", dim=len(shape) - 2, c=c)
    if op == "group_norm":
        return dict(op="group_norm", groups=draw(st.sampled_from(_divisors(c))), c=c, affine=draw(st.booleans()))
    if op == "layer_norm":
        n = draw(st.integers(1, len(shape) - 1))
        return dict(op="layer_norm", shape=shape[len(shape) - n:], affine=draw(st.booleans()))
    return dict(op="prelu", c=draw(st.sampled_from([1, c])))


@st.composite
def chain_recipes(draw, int8: bool = False, max_layers: int = 5):
    """A chain of conv / pool / norm / activation layers on [N, C, L] or [N, C, H, W], optionally
    ending in flatten + Linear (+ activation). `int8`: only ops with an int8 lowering."""
    dim = draw(st.sampled_from([1, 2]))
    spatial = [draw(st.integers(3, 24))] if dim == 1 else [draw(st.integers(3, 10)), draw(st.integers(3, 10))]
    shape = [draw(st.integers(1, 2)), draw(st.integers(1, 6)), *spatial]
    in_shape = list(shape)
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        # pad and upsample have no int8 lowering: they would be float islands in an int8 chain
        kinds = ["conv", "pool", "norm_act"] if int8 else ["conv", "conv", "conv_transpose", "pool", "norm_act",
                                                           "pad", "upsample"]
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            spec = draw(_conv_spec(shape, dim, int8))
        elif kind == "pad":
            spec = draw(_pad_spec(shape, dim))
        elif kind == "upsample":
            spec = draw(_upsample_spec(shape, dim))
        elif kind == "conv_transpose":
            spec = draw(_conv_transpose_spec(shape, dim))
        elif kind == "pool":
            spec = draw(_pool_spec(shape, dim))
        else:
            spec = draw(_norm_or_act_spec(shape, int8))
        new_shape = _shape_after(make_layer(spec), shape)
        if new_shape is None:  # an impossible combination (output size 0, padding > kernel/2, ...)
            continue
        layers.append(spec)
        shape = new_shape
        if spec["op"] == "conv" and draw(st.integers(0, 3)) == 0:
            layers.append(dict(op="batch_norm", dim=dim, c=shape[1]))  # folded into the conv
    if draw(st.booleans()):
        features = math.prod(shape[1:])
        layers += [dict(op="flatten"), dict(op="linear", cin=features, cout=draw(st.integers(1, 10)),
                                            bias=True if int8 else draw(st.booleans()))]
        if draw(st.booleans()):
            layers.append(dict(op="act", fn=draw(st.sampled_from(INT8_ACTS if int8 else sorted(FLOAT_ACTS)))))
    if not layers:  # every drawn layer was impossible on this input
        layers.append(dict(op="act", fn="relu"))
    return dict(family="chain", seed=draw(seeds), inputs=[in_shape], layers=layers)


@st.composite
def binary_recipes(draw, max_operands: int = 4, max_steps: int = 4, int8: bool = False):
    """Elementwise binary ops over operands whose shapes broadcast against a base shape: each drops
    some leading dims and sets some dims to 1; Python scalars and 0-d constants take part too.
    `int8`: only add/sub/mul (ops/q_elementwise.py) and unary ops with an int8 lookup table."""
    rank = draw(st.integers(1, 4))
    base = [draw(st.integers(1, 5)) for _ in range(rank)]

    def operand_shape(min_rank: int):
        drop = draw(st.integers(0, rank - min_rank))
        return [1 if draw(st.integers(0, 2)) == 0 else d for d in base[drop:]]

    operands = [dict(kind="input", shape=operand_shape(1))]
    for _ in range(draw(st.integers(1, max_operands - 1))):
        kind = draw(st.sampled_from(["input", "const", "scalar"]))
        if kind == "scalar":
            operands.append(dict(kind="scalar", value=draw(st.sampled_from([-1.5, -0.25, 0.0, 0.5, 1.0, 3.0]))))
        else:
            operands.append(dict(kind=kind, shape=operand_shape(1 if kind == "input" else 0)))
    ops = ["add", "mul", "sub"] if int8 else sorted(BINARY)
    steps = [dict(op=draw(st.sampled_from(ops)), operand=draw(st.integers(1, len(operands) - 1)),
                  swap=draw(st.booleans()), unary=draw(st.sampled_from([None, *sorted(UNARY)])))
             for _ in range(draw(st.integers(1, max_steps)))]
    inputs = [o["shape"] for o in operands if o["kind"] == "input"]
    return dict(family="binary", seed=draw(seeds), inputs=inputs, operands=operands, steps=steps)


def _layout_shape(step: dict, shape: list[int], inputs: list[list[int]]) -> list[int] | None:
    """Shape of the main value after one layout step, or None if torch refuses it or it is too big."""
    model = LayoutModel(dict(steps=[step]))
    xs = [torch.zeros(shape), *(torch.zeros(s) for s in inputs[1:])]
    try:
        with torch.no_grad():
            out = model(*xs)
    except (RuntimeError, ValueError, IndexError):
        return None
    out = out[0] if isinstance(out, tuple) else out
    if out.numel() == 0 or out.numel() > MAX_NUMEL or out.dim() == 0:
        return None
    return list(out.shape)


@st.composite
def _matmul_step(draw, shape, inputs):
    """y @ w or w @ y with w's batch dims broadcasting against y's (1s, missing or extra dims)."""
    batch, (m, n) = shape[:-2], shape[-2:]
    left = draw(st.booleans())
    w_rank = draw(st.integers(0, len(batch) + 1))
    padded = [1] * max(0, w_rank - len(batch)) + batch
    w_batch = [d if draw(st.booleans()) else 1 for d in padded[len(padded) - w_rank:]] if w_rank else []
    if w_rank > len(batch) and w_batch:
        w_batch[0] = draw(st.integers(1, 2))  # a batch dim y lacks
    p = draw(st.integers(1, 6))
    w_shape = w_batch + ([p, m] if left else [n, p])
    step = dict(op="matmul", left=left, shape=w_shape, **{"with": draw(st.sampled_from(["const", "input"]))})
    if step["with"] == "input":
        step["input"] = len(inputs)
        inputs.append(w_shape)
    return step


@st.composite
def layout_recipes(draw, max_steps: int = 4):
    """Shape ops and softmax / reductions / matmul on one input of rank 2-4."""
    shape = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    inputs = [list(shape)]
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        r = len(shape)
        op = draw(st.sampled_from(["reshape", "permute", "slice", "cat", "split", "softmax", "reduce", "matmul"]))
        if op == "reshape":
            i = draw(st.integers(0, r - 1))
            if draw(st.booleans()) and i < r - 1:  # merge two neighbours
                new = shape[:i] + [shape[i] * shape[i + 1]] + shape[i + 2:]
            else:  # split one dim in two
                f = draw(st.sampled_from(_divisors(shape[i])))
                new = shape[:i] + [f, shape[i] // f] + shape[i + 1:]
            if len(new) > 5:
                continue
            if draw(st.booleans()):
                new[draw(st.integers(0, len(new) - 1))] = -1
            step = dict(op="reshape", shape=new)
        elif op == "permute":
            step = dict(op="permute", perm=draw(st.permutations(range(r))))
        elif op == "slice":
            dim = draw(st.integers(-r, r - 1))
            size = shape[dim]
            start = draw(st.integers(-size, size - 1))
            step = dict(op="slice", dim=dim, start=start, stop=draw(st.sampled_from([None, size, size - 1, -1])),
                        step=draw(st.integers(1, 3)))
        elif op == "cat":
            step = dict(op="cat", dim=draw(st.integers(-r, r - 1)), order=draw(st.booleans()))
        elif op == "split":
            dims = [d for d in range(r) if shape[d] >= 2]
            if not dims:
                continue
            dim = draw(st.sampled_from(dims))
            step = dict(op="split", dim=dim, size=draw(st.integers(1, shape[dim] - 1)))
        elif op == "softmax":
            step = dict(op="softmax", dim=draw(st.integers(-r, r - 1)), log=draw(st.booleans()))
        elif op == "reduce":
            step = dict(op="reduce", fn=draw(st.sampled_from(["sum", "mean", "amax", "amin"])),
                        dim=draw(st.integers(-r, r - 1)), keepdim=draw(st.booleans()) or r == 1)
        else:
            if r < 2:
                continue
            step = draw(_matmul_step(shape, inputs))
        new_shape = _layout_shape(step, shape, inputs)
        if new_shape is None:
            if step["op"] == "matmul" and step.get("input") == len(inputs) - 1:
                inputs.pop()
            continue
        steps.append(step)
        shape = new_shape
    return dict(family="layout", seed=draw(seeds), inputs=inputs, steps=steps)


@st.composite
def rnn_recipes(draw):
    kind = draw(st.sampled_from(["lstm", "gru", "rnn_tanh", "rnn_relu"]))
    hidden = draw(st.integers(1, 8))
    return dict(family="rnn", seed=draw(seeds), kind=kind, input_size=draw(st.integers(1, 6)), hidden=hidden,
                layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
                bias=draw(st.booleans()), batch=draw(st.integers(1, 3)), seq=draw(st.integers(1, 7)),
                proj=draw(st.integers(0, hidden - 1)) if kind == "lstm" and draw(st.booleans()) else 0,
                state=draw(st.booleans()))


@st.composite
def attention_recipes(draw):
    """scaled_dot_product_attention on 3-D [B, L, E] or 4-D [B, H, L, E] q/k/v; k and v may broadcast
    over the batch (size 1); causal, or a float / bool mask that broadcasts over batch and heads.
    One example in three is an nn.MultiheadAttention instead."""
    b, lq, lk = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.integers(0, 2)) == 0:
        return draw(_mha_recipe(b, lq, lk))
    four_d = draw(st.booleans())
    e, ev = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    lead = [b, draw(st.integers(1, 3))] if four_d else [b]
    kv_lead = [1 if draw(st.booleans()) else lead[0], *lead[1:]]
    # torch refuses a mask together with is_causal
    mask = draw(st.sampled_from([None, "float", "bool"]))
    causal = draw(st.booleans()) if mask is None else False
    mask_shape = None
    if mask:
        batch = [draw(st.sampled_from([1, d])) for d in lead]
        mask_shape = batch[len(batch) - draw(st.integers(0, len(batch))):] + [lq, lk]
    return dict(family="attention", seed=draw(seeds), kind="sdpa", q=lead + [lq, e], k=kv_lead + [lk, e],
                v=kv_lead + [lk, ev], causal=causal, scale=draw(st.sampled_from([None, None, 0.3, 1.7])),
                mask=mask, mask_shape=mask_shape)


@st.composite
def _mha_recipe(draw, b, lq, lk):
    """nn.MultiheadAttention, its own key / value sizes or not, with a [L, S] or [B * heads, L, S] mask."""
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    e = heads * head_dim
    kdim, vdim = (draw(st.integers(1, 6)), draw(st.integers(1, 6))) if draw(st.booleans()) else (None, None)
    batch_first = draw(st.booleans())

    def layout(length, features):
        return [b, length, features] if batch_first else [length, b, features]

    mask = draw(st.sampled_from([None, "float", "bool"]))
    mask_shape = ([b * heads, lq, lk] if draw(st.booleans()) else [lq, lk]) if mask else None
    return dict(family="attention", seed=draw(seeds), kind="mha", heads=heads, head_dim=head_dim, kdim=kdim,
                vdim=vdim, batch_first=batch_first, bias=draw(st.booleans()), q=layout(lq, e),
                k=layout(lk, kdim or e), v=layout(lk, vdim or e), mask=mask, mask_shape=mask_shape,
                need_weights=draw(st.booleans()), average=draw(st.booleans()))


def _sequence_shape(recipe: dict, step: dict, inputs: list[list[int]]) -> list[int] | None:
    """Shape of y after one more sequence step, or None if torch refuses it or it is too big."""
    trial = dict(recipe, steps=[*recipe["steps"], step], inputs=inputs)
    index_input = recipe["family"] == "embedding"
    xs = [torch.zeros(s, dtype=torch.long if i == 0 and index_input else torch.float32) for i, s in enumerate(inputs)]
    try:
        with torch.no_grad():
            out = SequenceModel(trial).eval()(*xs)
    except (RuntimeError, ValueError):
        return None
    if out.numel() == 0 or out.numel() > MAX_NUMEL:
        return None
    return list(out.shape)


@st.composite
def _sequence_steps(draw, recipe: dict, d: int, int8: bool, max_steps: int):
    """Appends steps to recipe["steps"] (and second inputs to recipe["inputs"]) on y of width d."""
    acts = INT8_ACTS if int8 else sorted(FLOAT_ACTS)
    shape = None
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(["linear", "layer_norm", "layer_norm", "softmax", "act", "matmul_self",
                                   "matmul_input", "attention", "attention", "residual", "conv"]))
        inputs = [list(s) for s in recipe["inputs"]]
        if op == "linear":
            step = dict(op="linear", cin=d, cout=draw(st.integers(1, 12)), bias=True if int8 else draw(st.booleans()))
        elif op == "layer_norm":
            step = dict(op="layer_norm", d=d, affine=draw(st.booleans()))
        elif op == "softmax":  # int8 softmax is over the last dim, and log_softmax stays float
            step = dict(op="softmax", log=False if int8 else draw(st.booleans()))
        elif op == "act":
            step = dict(op="act", fn=draw(st.sampled_from(acts)))
        elif op == "residual":
            step = dict(op="residual", d=d, fn=draw(st.sampled_from(acts)))
        elif op == "matmul_self":
            step = dict(op="matmul_self", scale=draw(st.sampled_from([1.0, 0.25])))
        elif op == "matmul_input":
            b = recipe["inputs"][0][0]
            step = dict(op="matmul_input", input=len(inputs))
            inputs.append([draw(st.sampled_from([1, b])), d, draw(st.integers(1, 8))])
        elif op == "conv":
            step = dict(op="conv", cin=d, cout=draw(st.integers(1, 8)), k=draw(st.integers(1, 3)))
        else:
            divisors = _divisors(d)
            heads = draw(st.sampled_from(divisors))
            # int8: masks and causal attention stay float (ops/attention.py has no int8 form for them)
            mask = None if int8 else draw(st.sampled_from([None, "float", "bool"]))
            causal = False if (int8 or mask) else draw(st.booleans())
            n = shape[1] if shape else recipe["inputs"][0][1]  # tokens: a conv with an even k adds one
            mask_shape = None
            if mask:
                b = recipe["inputs"][0][0]
                mask_shape = draw(st.sampled_from([[n, n], [1, 1, n, n], [b, 1, n, n], [1, heads, n, n]]))
            step = dict(op="attention", d=d, heads=heads, bias=True if int8 else draw(st.booleans()),
                        causal=causal, scale=draw(st.sampled_from([None, 0.5])), mask=mask, mask_shape=mask_shape)
        new_shape = _sequence_shape(recipe, step, inputs)
        if new_shape is None:
            continue
        recipe["steps"].append(step)
        recipe["inputs"] = inputs
        shape, d = new_shape, new_shape[-1]
    return recipe


@st.composite
def sequence_recipes(draw, int8: bool = False, max_steps: int = 4):
    """Token models on x [B, L, D] (plus second matmul operands [B or 1, D, P])."""
    b, n, d = draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 12))
    recipe = dict(family="sequence", seed=draw(seeds), inputs=[[b, n, d]], steps=[])
    return draw(_sequence_steps(recipe, d, int8, max_steps))


@st.composite
def embedding_recipes(draw, max_steps: int = 3):
    """nn.Embedding (maybe with a padding_idx) on int64 indices [B, L], then sequence steps."""
    num, dim = draw(st.integers(1, 20)), draw(st.integers(1, 12))
    b, n = draw(st.integers(1, 2)), draw(st.integers(1, 8))
    recipe = dict(family="embedding", seed=draw(seeds), num=num, dim=dim,
                  padding_idx=draw(st.sampled_from([None, 0, num - 1])), inputs=[[b, n]], steps=[])
    return draw(_sequence_steps(recipe, dim, False, max_steps))


FLOAT_FAMILIES = {
    "chain": chain_recipes(),
    "binary": binary_recipes(),
    "layout": layout_recipes(),
    "rnn": rnn_recipes(),
    "attention": attention_recipes(),
    "sequence": sequence_recipes(),
    "embedding": embedding_recipes(),
}
INT8_FAMILIES = {"chain_int8": chain_recipes(int8=True), "binary_int8": binary_recipes(int8=True),
                 "sequence_int8": sequence_recipes(int8=True)}
