"""Recurrent layers: lstm, gru and rnn (Elman, tanh or relu), one IR node per nn.LSTM / nn.GRU /
nn.RNN call, with PyTorch's semantics (multi-layer, bidirectional, batch_first, with or without
biases, optional initial states, LSTM projections).

Sources: aten.lstm.input, aten.gru.input, aten.rnn_tanh.input, aten.rnn_relu.input, and the single
cells aten.lstm_cell / gru_cell / rnn_tanh_cell / rnn_relu_cell (nn.LSTMCell, ...), which become the
same ops with one layer and one time step between views [B, I] <-> [1, B, I].

Inputs: (x, h0[, c0], weights...) where an empty h0 / c0 slot means zeros (what torch uses when
the caller passes no state), and the weights are torch's flat list, per layer then direction:
w_ih, w_hh[, b_ih, b_hh][, w_hr]. Outputs: (y, h_n[, c_n]) with torch's shapes:
y [T, B, D*out] (or [B, T, D*out] when batch_first), h_n [L*D, B, out], c_n [L*D, B, hidden],
where out = proj_size or hidden. Gate order is torch's: LSTM i, f, g, o; GRU r, z, n.

ONNX LSTM / GRU / RNN (one layer per node) become the same ops: gate blocks reordered (ONNX LSTM
i, o, f, c; GRU z, r, h), a lone reverse direction run forward over the time-flipped input, and Y
reshaped / transposed to ONNX's [seq, directions, batch, hidden]. What the IR cannot compute
(GRU linear_before_reset=0, other activations, clip, input_forget, peepholes, partial
sequence_lens) is refused by attribute.

The C is one kernel call per layer and direction; layers between the first and the last write
into the node's scratch space (two ping-pong buffers), final states go straight to h_n / c_n.
Dropout between layers is the identity at inference.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, converts, converts_onnx, register

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
_STATES = {"lstm": 2, "gru": 1, "rnn": 1}  # state inputs after x
_MAX_LAYERS = 64  # bounds num_inputs only; any practical depth fits

_COMMON_ATTRS = {
    "hidden_size": Attr("int"),
    "num_layers": Attr("int", 1),
    "bidirectional": Attr("bool", False),
    "batch_first": Attr("bool", False),
    "has_biases": Attr("bool", True),
}


# -- layout helpers ---------------------------------------------------------------------------------

def _dims(node):
    a = node.attrs
    hidden = a["hidden_size"]
    proj = a.get("proj_size", 0) or 0
    out = proj if proj else hidden
    return hidden, out, a["num_layers"], 2 if a["bidirectional"] else 1


def _per_cell(node) -> int:
    """Weights per (layer, direction) in torch's flat list."""
    return 2 + (2 if node.attrs["has_biases"] else 0) + (1 if node.attrs.get("proj_size", 0) else 0)


def _cell_weights(node, values, layer: int, direction: int):
    """(w_ih, w_hh, b_ih, b_hh, w_hr) for one cell; None where absent. `values` are the weight slots."""
    _hidden, _out, _layers, dirs = _dims(node)
    k = _per_cell(node)
    chunk = list(values[(layer * dirs + direction) * k:(layer * dirs + direction + 1) * k])
    w_ih, w_hh = chunk[0], chunk[1]
    b_ih, b_hh = (chunk[2], chunk[3]) if node.attrs["has_biases"] else (None, None)
    w_hr = chunk[-1] if node.attrs.get("proj_size", 0) else None
    return w_ih, w_hh, b_ih, b_hh, w_hr


def _seq_batch(node, x_shape):
    return (x_shape[1], x_shape[0]) if node.attrs["batch_first"] else (x_shape[0], x_shape[1])


# -- shape rule -------------------------------------------------------------------------------------

def _make_infer(kind: str):
    gates, nstates = _GATES[kind], _STATES[kind]

    def infer(node, ins):
        x = ins[0]
        hidden, out, layers, dirs = _dims(node)
        if hidden <= 0 or layers <= 0:
            raise ValueError(f"hidden_size {hidden} and num_layers {layers} must be positive")
        if kind == "rnn" and node.attrs["nonlinearity"] not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity {node.attrs['nonlinearity']!r} is neither 'tanh' nor 'relu'")
        if x is None or x.dtype != DType.float32 or len(x.shape) != 3:
            raise ValueError(f"{kind} takes a float32 input of rank 3, got "
                             f"{'nothing' if x is None else x.dtype.value + str(list(x.shape))}")
        seq, batch = _seq_batch(node, x.shape)
        weights = ins[1 + nstates:]
        if len(weights) != layers * dirs * _per_cell(node):
            raise ValueError(f"expected {layers * dirs * _per_cell(node)} weight tensors, got {len(weights)}")
        state_shapes = [(layers * dirs, batch, out), (layers * dirs, batch, hidden)][:nstates]
        for k, (s, want) in enumerate(zip(ins[1:1 + nstates], state_shapes)):
            if s is not None and (s.shape != want or s.dtype != DType.float32):
                raise ValueError(f"initial state {k} is {s.dtype.value}{list(s.shape)}, expected float32{list(want)}")
        for layer in range(layers):
            in_size = x.shape[2] if layer == 0 else dirs * out
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = _cell_weights(node, weights, layer, d)
                expect = [(w_ih, (gates * hidden, in_size)), (w_hh, (gates * hidden, out)),
                          (b_ih, (gates * hidden,)), (b_hh, (gates * hidden,)), (w_hr, (out, hidden))]
                if w_ih is None or w_hh is None:
                    raise ValueError(f"layer {layer} direction {d}: missing w_ih or w_hh")
                for t, shape in expect:
                    if t is not None and (t.shape != shape or t.dtype != DType.float32):
                        raise ValueError(f"layer {layer} direction {d}: weight {t.name} is "
                                         f"{t.dtype.value}{list(t.shape)}, expected float32{list(shape)}")
        y_shape = (batch, seq, dirs * out) if node.attrs["batch_first"] else (seq, batch, dirs * out)
        outs = [(y_shape, DType.float32), ((layers * dirs, batch, out), DType.float32)]
        if kind == "lstm":
            outs.append(((layers * dirs, batch, hidden), DType.float32))
        return outs

    return infer


# -- NumPy reference (float64, independent of the C loop order) -------------------------------------

def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _make_reference(kind: str):
    nstates = _STATES[kind]

    def reference(node, args):
        hidden, out, layers, dirs = _dims(node)
        x = args[0].astype(np.float64)
        if node.attrs["batch_first"]:
            x = x.transpose(1, 0, 2)  # work time-major
        seq, batch = x.shape[0], x.shape[1]
        h0 = args[1] if args[1] is not None else np.zeros((layers * dirs, batch, out))
        c0 = None
        if kind == "lstm":
            c0 = args[2] if args[2] is not None else np.zeros((layers * dirs, batch, hidden))
        weights = [None if w is None else w.astype(np.float64) for w in args[1 + nstates:]]
        h_n = np.zeros((layers * dirs, batch, out))
        c_n = np.zeros((layers * dirs, batch, hidden))
        layer_in = x
        for layer in range(layers):
            layer_out = np.zeros((seq, batch, dirs * out))
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = _cell_weights(node, weights, layer, d)
                b_ih = 0.0 if b_ih is None else b_ih
                b_hh = 0.0 if b_hh is None else b_hh
                idx = layer * dirs + d
                h = h0[idx].astype(np.float64)
                c = c0[idx].astype(np.float64) if c0 is not None else None
                steps = range(seq - 1, -1, -1) if d == 1 else range(seq)
                for t in steps:
                    gi = layer_in[t] @ w_ih.T + b_ih
                    gh = h @ w_hh.T + b_hh
                    if kind == "lstm":
                        i, f, g, o = np.split(gi + gh, 4, axis=1)
                        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                        h = _sigmoid(o) * np.tanh(c)
                        if w_hr is not None:
                            h = h @ w_hr.T
                    elif kind == "gru":
                        i_r, i_z, i_n = np.split(gi, 3, axis=1)
                        h_r, h_z, h_n_ = np.split(gh, 3, axis=1)
                        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
                        n = np.tanh(i_n + r * h_n_)
                        h = (1.0 - z) * n + z * h
                    elif node.attrs["nonlinearity"] == "relu":
                        h = np.maximum(gi + gh, 0.0)
                    else:
                        h = np.tanh(gi + gh)
                    layer_out[t, :, d * out:(d + 1) * out] = h
                h_n[idx] = h
                if c is not None:
                    c_n[idx] = c
            layer_in = layer_out
        y = layer_in.transpose(1, 0, 2) if node.attrs["batch_first"] else layer_in
        result = [y.astype(np.float32), h_n.astype(np.float32)]
        if kind == "lstm":
            result.append(c_n.astype(np.float32))
        return result

    return reference


# -- C ------------------------------------------------------------------------------------------------

def _work_floats(kind: str, hidden: int) -> int:
    return {"lstm": 4, "gru": 6, "rnn": 1}[kind] * hidden


def _layer_floats(node, ins) -> int:
    """Floats of one intermediate layer output: [T, B, D*out]."""
    _hidden, out, _layers, dirs = _dims(node)
    seq, batch = _seq_batch(node, ins[0].shape)
    return seq * batch * dirs * out


def _make_scratch(kind: str):
    def scratch(node, ins, outs):
        hidden, _out, layers, _dirs = _dims(node)
        buffers = min(layers - 1, 2)  # ping-pong between intermediate layers
        return 4 * (_work_floats(kind, hidden) + buffers * _layer_floats(node, ins))

    return scratch


def _offset(ptr: str, floats: int) -> str:
    return ptr if floats == 0 else f"{ptr} + {floats}"


def _make_emit(kind: str):
    nstates = _STATES[kind]

    def emit(ctx, node):
        hidden, out, layers, dirs = _dims(node)
        x = node.inputs[0]
        seq, batch = _seq_batch(node, ctx.shape(x))
        states = node.inputs[1:1 + nstates]
        weights = node.inputs[1 + nstates:]
        ins = [ctx.tensor(i) if i else None for i in node.inputs]
        scratch = ctx.scratch(node)
        work = scratch
        layer_floats = _layer_floats(node, ins)
        buffers = [_work_floats(kind, hidden) + k * layer_floats for k in range(2)]  # float offsets in scratch
        y_width = dirs * out
        batch_first = int(node.attrs["batch_first"])
        calls = []
        for layer in range(layers):
            src = ctx.ptr(x) if layer == 0 else _offset(scratch, buffers[(layer - 1) % 2])
            in_size = ctx.shape(x)[2] if layer == 0 else dirs * out
            dst, dst_at = (ctx.ptr(node.outputs[0]), 0) if layer == layers - 1 else (scratch, buffers[layer % 2])
            for d in range(dirs):
                idx = layer * dirs + d
                w_ih, w_hh, b_ih, b_hh, w_hr = (ctx.ptr(w) if w else "NULL"
                                                for w in _cell_weights(node, weights, layer, d))
                h0 = _offset(ctx.ptr(states[0]), idx * batch * out) if states[0] else "NULL"
                h_n = _offset(ctx.ptr(node.outputs[1]), idx * batch * out)
                y = _offset(dst, dst_at + d * out)
                note = f" /* layer {layer}{' reverse' if d else ''} */"
                tail = f"{seq}, {batch}, {in_size}, {hidden}"
                if kind == "lstm":
                    c0 = _offset(ctx.ptr(states[1]), idx * batch * hidden) if states[1] else "NULL"
                    c_n = _offset(ctx.ptr(node.outputs[2]), idx * batch * hidden)
                    calls.append(f"mb_lstm_f32({src}, {h0}, {c0}, {w_ih}, {w_hh}, {b_ih}, {b_hh}, {w_hr}, "
                                 f"{y}, {h_n}, {c_n}, {work}, {tail}, {out}, {y_width}, {batch_first}, {d});" + note)
                elif kind == "gru":
                    calls.append(f"mb_gru_f32({src}, {h0}, {w_ih}, {w_hh}, {b_ih}, {b_hh}, "
                                 f"{y}, {h_n}, {work}, {tail}, {y_width}, {batch_first}, {d});" + note)
                else:
                    relu = int(node.attrs["nonlinearity"] == "relu")
                    calls.append(f"mb_rnn_f32({src}, {h0}, {w_ih}, {w_hh}, {b_ih}, {b_hh}, "
                                 f"{y}, {h_n}, {work}, {tail}, {y_width}, {batch_first}, {d}, {relu});" + note)
        return "\n    ".join(calls)

    return emit


def _make_macs(kind: str):
    gates = _GATES[kind]

    def macs(node, ins, outs):
        hidden, out, layers, dirs = _dims(node)
        seq, batch = _seq_batch(node, ins[0].shape)
        total = 0
        for layer in range(layers):
            in_size = ins[0].shape[2] if layer == 0 else dirs * out
            per_step = gates * hidden * (in_size + out)  # W_ih x and W_hh h
            if node.attrs.get("proj_size", 0):
                per_step += out * hidden  # W_hr h
            total += dirs * seq * batch * per_step
        return total

    return macs


_DOCS = {
    "lstm": "LSTM (gates i, f, g, o; optional projection), all layers and directions of one nn.LSTM call",
    "gru": "GRU (gates r, z, n), all layers and directions of one nn.GRU call",
    "rnn": "Elman RNN h' = tanh|relu(W_ih x + b_ih + W_hh h + b_hh), all layers and directions of one nn.RNN",
}

for _kind in ("lstm", "gru", "rnn"):
    _attrs = dict(_COMMON_ATTRS)
    if _kind == "lstm":
        _attrs["proj_size"] = Attr("int", 0)
    if _kind == "rnn":
        _attrs["nonlinearity"] = Attr("str", "tanh")
    _lo = 1 + _STATES[_kind] + 2
    _hi = 1 + _STATES[_kind] + _MAX_LAYERS * 2 * 5
    register(OpDef(
        name=_kind, infer=_make_infer(_kind), reference=_make_reference(_kind), emit=_make_emit(_kind),
        kernels=("mb_rnn",), attrs=_attrs, num_inputs=(_lo, _hi), macs=_make_macs(_kind),
        scratch_bytes=_make_scratch(_kind), doc=_DOCS[_kind],
    ))


# -- converters ---------------------------------------------------------------------------------------

def _state(ctx, value) -> str:
    """IR name of an initial state, or "" when it is the all-zero default (the kernel zero-fills)."""
    if value is None:
        return ""
    data = ctx.constant_value(value)
    if data is not None and not np.any(data):
        return ""
    return ctx.tensor(value)


def _convert(ctx, fx, kind: str, nonlinearity: str = "tanh"):
    a = ctx.args(fx)
    name = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[kind]
    if a["train"]:
        raise ctx.unsupported(f"{name} in training mode (train=True): call model.eval() before compiling")
    layers, dirs = int(a["num_layers"]), 2 if a["bidirectional"] else 1
    has_biases = bool(a["has_biases"])
    params = list(a["params"])
    base = 2 + (2 if has_biases else 0)
    if len(params) == layers * dirs * (base + 1) and kind == "lstm":
        proj_size = ctx.shape(ctx.tensor(params[base]))[0]  # w_hr [proj_size, hidden]
    elif len(params) == layers * dirs * base:
        proj_size = 0
    else:
        raise ctx.unsupported(f"{name} with {len(params)} weight tensors for {layers} layer(s) x {dirs} "
                              f"direction(s) is not a layout ModelBlocks knows")
    w_hh = ctx.tensor(params[1])
    hidden = ctx.shape(w_hh)[0] // _GATES[kind]
    hx = a["hx"]
    if kind == "lstm":
        if len(hx) != 2:
            raise ctx.unsupported(f"LSTM with {len(hx)} state tensors (expected h0 and c0)")
        states = [_state(ctx, hx[0]), _state(ctx, hx[1])]
    else:
        states = [_state(ctx, hx)]
    attrs = {"hidden_size": hidden, "num_layers": layers, "bidirectional": bool(a["bidirectional"]),
             "batch_first": bool(a["batch_first"]), "has_biases": has_biases}
    if kind == "lstm":
        attrs["proj_size"] = proj_size
    if kind == "rnn":
        attrs["nonlinearity"] = nonlinearity
    inputs = [ctx.tensor(a["input"])] + states + [ctx.tensor(p) for p in params]
    return tuple(ctx.emit(kind, inputs, attrs))


# -- single cells (nn.LSTMCell, nn.GRUCell, nn.RNNCell): one time step of a 1-layer network ------------

def _convert_cell(ctx, fx, kind: str, nonlinearity: str = "tanh"):
    a = ctx.args(fx)
    x = ctx.tensor(a["input"])
    if len(ctx.shape(x)) != 2:
        raise ctx.unsupported(f"{kind} cell input of shape {list(ctx.shape(x))} (expected [batch, input_size])")
    batch, in_size = ctx.shape(x)
    if (a["b_ih"] is None) != (a["b_hh"] is None):
        raise ctx.unsupported(f"{kind} cell with only one of b_ih / b_hh")
    has_biases = a["b_ih"] is not None
    params = [a["w_ih"], a["w_hh"]] + ([a["b_ih"], a["b_hh"]] if has_biases else [])
    weights = [ctx.tensor(p) for p in params]
    hidden = ctx.shape(weights[1])[0] // _GATES[kind]
    hx = list(a["hx"]) if kind == "lstm" else [a["hx"]]
    states = []
    for value in hx:  # [batch, hidden] -> [1, batch, hidden]: a view, no copy
        s = _state(ctx, value)
        states.append(ctx.emit1("reshape", [s], {"shape": (1, batch, hidden)}) if s else "")
    attrs = {"hidden_size": hidden, "num_layers": 1, "bidirectional": False, "batch_first": False,
             "has_biases": has_biases}
    if kind == "rnn":
        attrs["nonlinearity"] = nonlinearity
    seq_x = ctx.emit1("reshape", [x], {"shape": (1, batch, in_size)})
    outs = ctx.emit(kind, [seq_x] + states + weights, attrs)
    # with one step, y equals h_n; the cell returns the final state(s) as [batch, hidden]
    finals = tuple(ctx.emit1("reshape", [o], {"shape": (batch, hidden)}) for o in outs[1:])
    return finals if kind == "lstm" else finals[0]


def _converter(convert, kind: str, nonlinearity: str):
    return lambda ctx, fx: convert(ctx, fx, kind, nonlinearity)


# aten overload -> (IR op, nonlinearity), for whole layers and for single cells
for _target, (_kind, _nl) in {"aten.lstm.input": ("lstm", "tanh"), "aten.gru.input": ("gru", "tanh"),
                              "aten.rnn_tanh.input": ("rnn", "tanh"), "aten.rnn_relu.input": ("rnn", "relu")}.items():
    converts(_target)(_converter(_convert, _kind, _nl))
    converts(_target.replace(".input", "_cell.default"))(_converter(_convert_cell, _kind, _nl))


# -- ONNX LSTM / GRU / RNN: one layer (and one or two directions) per node ------------------------------

# ONNX gate blocks -> torch's: LSTM i,o,f,c -> i,f,g(c),o; GRU z,r,h -> r,z,n
_ONNX_GATE_ORDER = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2), "rnn": (0,)}
_ONNX_DEFAULT_ACTS = {"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh"), "rnn": ("tanh",)}


def _onnx_gates(w: np.ndarray, kind: str, hidden: int) -> np.ndarray:
    """Rows of an ONNX weight / bias (gate blocks of `hidden` rows each) in torch's gate order."""
    blocks = [w[g * hidden:(g + 1) * hidden] for g in _ONNX_GATE_ORDER[kind]]
    return np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=np.float32)


def _onnx_rnn_checks(ctx, node, kind: str, dirs: int, seq: int) -> str:
    """Refuse what the IR op cannot compute exactly; returns the RNN nonlinearity."""
    acts = tuple(str(a).lower() for a in ctx.attr("activations", ()))
    want = _ONNX_DEFAULT_ACTS[kind]
    nonlinearity = "tanh"
    if kind == "rnn" and acts and all(a == "relu" for a in acts):
        nonlinearity, want = "relu", ("relu",)
    if acts and acts != want * dirs:
        raise ctx.unsupported(f"attribute activations={list(ctx.attr('activations'))} is not supported "
                              f"(only {node.op_type}'s defaults {[a.capitalize() for a in want]}"
                              f"{' or Relu' if kind == 'rnn' else ''} per direction are)")
    if ctx.has_attr("clip"):
        raise ctx.unsupported(f"attribute clip={ctx.attr('clip')} is not supported (cell clipping)")
    if kind == "lstm" and int(ctx.attr("input_forget", 0)):
        raise ctx.unsupported("attribute input_forget=1 (coupled input and forget gates) is not supported")
    if kind == "gru" and int(ctx.attr("linear_before_reset", 0)) != 1:
        raise ctx.unsupported("attribute linear_before_reset=0 is not supported: the IR's GRU applies the reset "
                              "gate after the recurrent product (PyTorch's GRU, linear_before_reset=1)")
    if ctx.has_input(4):
        lens = ctx.const(4)
        if lens is None or np.any(np.asarray(lens) != seq):
            raise ctx.unsupported("input sequence_lens is supported only as a constant equal to the full "
                                  f"sequence length {seq} for every batch entry")
    if kind == "lstm" and ctx.has_input(7):
        peep = ctx.const(7)
        if peep is None or np.any(peep):
            raise ctx.unsupported("input P (LSTM peephole weights) is supported only when it is all zeros")
    return nonlinearity


def _onnx_state(ctx, i: int, layout: int) -> str:
    """Initial state input i as the IR's [directions, batch, hidden]; "" when absent or all zeros."""
    if not ctx.has_input(i):
        return ""
    value = ctx.const(i)
    if value is not None:
        if not np.any(value):
            return ""
        value = np.asarray(value, dtype=np.float32)
        return ctx.constant(np.ascontiguousarray(value.transpose(1, 0, 2) if layout else value), "rnn_state")
    state = ctx.input(i)
    return ctx.emit1("permute", [state], {"perm": (1, 0, 2)}) if layout else state


def _from_onnx_recurrent(ctx, node, kind: str):
    """X [seq, batch, in] (layout 1: [batch, seq, in]); W [D, G*H, in], R [D, G*H, H], B [D, 2*G*H]
    (constants). Y [seq, D, batch, H] (layout 1: [batch, seq, D, H]), Y_h / Y_c [D, batch, H]
    (layout 1: [batch, D, H]). A lone "reverse" direction runs forward over the time-flipped input."""
    x = ctx.input(0)
    layout = int(ctx.attr("layout", 0))
    if layout not in (0, 1):
        raise ctx.unsupported(f"attribute layout={layout} is not supported (0 and 1 are)")
    if len(ctx.shape(x)) != 3:
        raise ctx.unsupported(f"input X of shape {list(ctx.shape(x))} is not [seq, batch, input]")
    direction = str(ctx.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.unsupported(f"attribute direction={direction!r} is not supported")
    dirs = 2 if direction == "bidirectional" else 1
    w = np.asarray(ctx.required_const(1, "W"), dtype=np.float32)
    r = np.asarray(ctx.required_const(2, "R"), dtype=np.float32)
    gates = _GATES[kind]
    hidden = r.shape[-1]
    if int(ctx.attr("hidden_size", hidden)) != hidden or w.shape[:2] != (dirs, gates * hidden) \
            or r.shape != (dirs, gates * hidden, hidden):
        raise ctx.unsupported(f"weights W {list(w.shape)} / R {list(r.shape)} do not fit {dirs} direction(s) of "
                              f"hidden_size {hidden}")
    seq_axis = 1 if layout else 0
    seq = ctx.shape(x)[seq_axis]
    nonlinearity = _onnx_rnn_checks(ctx, node, kind, dirs, seq)
    b = ctx.const(3) if ctx.has_input(3) else None
    if ctx.has_input(3) and b is None:
        raise ctx.unsupported("input B (biases) computed from the model's inputs is not supported")
    weights = []
    for d in range(dirs):
        weights += [ctx.constant(_onnx_gates(w[d], kind, hidden), "w_ih"),
                    ctx.constant(_onnx_gates(r[d], kind, hidden), "w_hh")]
        if b is not None:
            bd = np.asarray(b, dtype=np.float32)[d]
            weights += [ctx.constant(_onnx_gates(bd[:gates * hidden], kind, hidden), "b_ih"),
                        ctx.constant(_onnx_gates(bd[gates * hidden:], kind, hidden), "b_hh")]
    states = [_onnx_state(ctx, 5, layout)] + ([_onnx_state(ctx, 6, layout)] if kind == "lstm" else [])
    reverse = direction == "reverse"
    if reverse:
        x = ctx.emit1("flip", [x], {"dims": (seq_axis,)})
    attrs = {"hidden_size": hidden, "num_layers": 1, "bidirectional": dirs == 2, "batch_first": bool(layout),
             "has_biases": b is not None}
    if kind == "rnn":
        attrs["nonlinearity"] = nonlinearity
    outs = ctx.emit(kind, [x] + states + weights, attrs)
    y = ctx.emit1("flip", [outs[0]], {"dims": (seq_axis,)}) if reverse else outs[0]
    t, batch = (ctx.shape(y)[1], ctx.shape(y)[0]) if layout else ctx.shape(y)[:2]
    if layout:  # [B, T, D*H] -> [B, T, D, H]: a view
        y = ctx.emit1("reshape", [y], {"shape": (batch, t, dirs, hidden)})
    elif dirs == 1:  # [T, B, H] -> [T, 1, B, H]: a view
        y = ctx.emit1("reshape", [y], {"shape": (t, 1, batch, hidden)})
    else:  # [T, B, 2*H] -> [T, 2, B, H]
        y = ctx.emit1("reshape", [y], {"shape": (t, batch, dirs, hidden)})
        y = ctx.emit1("permute", [y], {"perm": (0, 2, 1, 3)})
    finals = []
    for s in outs[1:]:  # [D, B, H]; layout 1 wants [B, D, H]
        if layout:
            s = ctx.emit1("permute", [s], {"perm": (1, 0, 2)}) if dirs > 1 else \
                ctx.emit1("reshape", [s], {"shape": (batch, 1, hidden)})
        finals.append(s)
    return (y, *finals)


for _op_type, _kind in (("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn")):
    converts_onnx(_op_type)(lambda ctx, node, kind=_kind: _from_onnx_recurrent(ctx, node, kind))
