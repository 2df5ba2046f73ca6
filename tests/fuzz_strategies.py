"""Hypothesis strategies that draw small random models ("recipes") from ModelBlocks' op set.

A recipe is plain data (dicts, lists, numbers) so that a failure prints something one can paste
into `build(recipe)` to get the same nn.Module and inputs back: weights and input values come from
the recipe's `seed`, not from hypothesis, which keeps examples cheap to draw and to shrink.
tests/test_fuzz.py runs these strategies bounded and derandomized; bench/fuzz_soak.py runs them long.

Families (the `family` key):
  chain      Conv1d/Conv2d, ConvTranspose1d/2d, pooling, BatchNorm, GroupNorm, LayerNorm, PReLU,
             activations, flatten + Linear; `int8=True` draws only ops with an int8 lowering.
  binary     add/sub/mul/div/maximum/minimum over inputs, constants and Python scalars whose shapes
             broadcast (missing leading dims, size-1 dims), with unary ops in between.
  layout     reshape/permute/slice/cat/split/softmax/log_softmax/reductions/matmul with broadcast
             batch dims against a constant or a second input; may return several outputs.
  rnn        LSTM/GRU: sequence length, hidden size, layers, bidirectional, batch_first, projection,
             given initial state.
  attention  F.scaled_dot_product_attention, 3-D or 4-D, cross lengths, causal or not, custom scale.

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
    raise ValueError(f"unknown chain op {op!r}")


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
    """One nn.LSTM / nn.GRU; extra inputs are its initial state; returns the output and final state."""

    def __init__(self, recipe: dict):
        super().__init__()
        r = recipe
        kw = dict(input_size=r["input_size"], hidden_size=r["hidden"], num_layers=r["layers"],
                  bidirectional=r["bidirectional"], batch_first=r["batch_first"], bias=r["bias"])
        self.rnn = nn.LSTM(proj_size=r["proj"], **kw) if r["kind"] == "lstm" else nn.GRU(**kw)

    def forward(self, x, *state):
        if len(state) == 2:
            out, (h, c) = self.rnn(x, (state[0], state[1]))
            return out, h, c
        out, h = self.rnn(x, state[0]) if state else self.rnn(x)
        return (out, *h) if isinstance(h, tuple) else (out, h)


class AttentionModel(nn.Module):
    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe

    def forward(self, q, k, v):
        r = self.recipe
        return F.scaled_dot_product_attention(q, k, v, is_causal=r["causal"], scale=r["scale"])


def input_shapes(recipe: dict) -> list[list[int]]:
    family = recipe["family"]
    if family in ("chain", "layout", "binary"):
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
    else:
        raise ValueError(f"unknown family {family!r}")
    return model.eval()


def make_inputs(recipe: dict, k: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    """Input set number `k` of a recipe (seeded, so reproducible from the recipe alone)."""
    gen = torch.Generator().manual_seed(recipe["seed"] * 1000 + k)
    return tuple(torch.randn(s, generator=gen) * scale for s in input_shapes(recipe))


# -- drawing -----------------------------------------------------------------------------------------

seeds = st.integers(0, 2 ** 20)


def _shape_after(module: nn.Module, shape: list[int]) -> list[int] | None:
    """The output shape of `module` on `shape`, or None when torch refuses it or it is too big/empty."""
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except (RuntimeError, ValueError):
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
        kinds = ["conv", "pool", "norm_act"] if int8 else ["conv", "conv", "conv_transpose", "pool", "norm_act"]
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            spec = draw(_conv_spec(shape, dim, int8))
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
    kind = draw(st.sampled_from(["lstm", "gru"]))
    hidden = draw(st.integers(1, 8))
    return dict(family="rnn", seed=draw(seeds), kind=kind, input_size=draw(st.integers(1, 6)), hidden=hidden,
                layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
                bias=draw(st.booleans()), batch=draw(st.integers(1, 3)), seq=draw(st.integers(1, 7)),
                proj=draw(st.integers(0, hidden - 1)) if kind == "lstm" and draw(st.booleans()) else 0,
                state=draw(st.booleans()))


@st.composite
def attention_recipes(draw):
    """scaled_dot_product_attention on 3-D [B, L, E] or 4-D [B, H, L, E] q/k/v; k and v may broadcast
    over the batch (size 1)."""
    four_d = draw(st.booleans())
    b, lq, lk = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    e, ev = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    lead = [b, draw(st.integers(1, 3))] if four_d else [b]
    kv_lead = [1 if draw(st.booleans()) else lead[0], *lead[1:]]
    return dict(family="attention", seed=draw(seeds), q=lead + [lq, e], k=kv_lead + [lk, e], v=kv_lead + [lk, ev],
                causal=draw(st.booleans()), scale=draw(st.sampled_from([None, None, 0.3, 1.7])))


FLOAT_FAMILIES = {
    "chain": chain_recipes(),
    "binary": binary_recipes(),
    "layout": layout_recipes(),
    "rnn": rnn_recipes(),
    "attention": attention_recipes(),
}
INT8_FAMILIES = {"chain_int8": chain_recipes(int8=True), "binary_int8": binary_recipes(int8=True)}
