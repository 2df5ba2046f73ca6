"""Ops that move no data: reshape (a view: no code, shares its input's memory) and identity /
dropout (removed by `passes/remove_identity.py`, a memcpy if they survive).

reshape covers view, reshape, flatten, squeeze and unsqueeze: the target shape is the one torch
computed for the node.
"""

from __future__ import annotations

import numpy as np

from .registry import Attr, OpDef, Prop, converts, converts_onnx, numel, register


def _reshape_infer(node, ins):
    shape = tuple(node.attrs["shape"])
    if numel(shape) != ins[0].numel:
        raise ValueError(f"cannot view {list(ins[0].shape)} as {list(shape)}")
    return [(shape, ins[0].dtype)]


register(OpDef(
    name="reshape", infer=_reshape_infer,
    reference=lambda node, args: [args[0].reshape(node.attrs["shape"])],
    emit=None, attrs={"shape": Attr("ints")}, props=frozenset({Prop.ALIAS}),
    doc="same data, another shape",
))


@converts("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.flatten.using_ints",
          "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze.default", "aten.unsqueeze.default",
          "aten.unflatten.int", "aten.view_copy.default")
def _view(ctx, fx):
    shape = tuple(int(d) for d in fx.meta["val"].shape)
    return ctx.emit1("reshape", [ctx.tensor(fx.args[0])], {"shape": shape})


def _copy_emit(ctx, node):
    return f"memcpy({ctx.ptr(node.outputs[0])}, {ctx.ptr(node.inputs[0])}, {ctx.tensor(node.inputs[0]).nbytes}u);"


for _name, _doc in (("identity", "a copy (clone, contiguous, detach)"), ("dropout", "identity at inference")):
    register(OpDef(
        name=_name, infer=lambda node, ins: [(ins[0].shape, ins[0].dtype)],
        reference=lambda node, args: [np.array(args[0], copy=True)],
        emit=_copy_emit, attrs={"p": Attr("float", 0.0)} if _name == "dropout" else {},
        props=frozenset({Prop.IDENTITY}), doc=_doc,
    ))


@converts("aten.clone.default", "aten.alias.default", "aten.detach.default", "aten.contiguous.default",
          "aten.lift_fresh_copy.default")
def _identity(ctx, fx):
    return ctx.emit1("identity", [ctx.tensor(fx.args[0])])


@converts("aten.copy.default")
def _copy(ctx, fx):
    """`dst.copy_(src)`: the result is src's values in dst's shape and dtype."""
    dst, src = fx.args[0], ctx.tensor(fx.args[1])
    want = fx.meta["val"]
    if tuple(want.shape) != ctx.shape(src) or str(want.dtype).replace("torch.", "") != ctx.info(src).dtype.value:
        raise ctx.unsupported("copy_ into a tensor of another shape or dtype is not supported: "
                              "use src.expand(...) or src.to(dtype) instead")
    del dst
    return ctx.emit1("identity", [src])


@converts("aten.dropout.default", "aten.feature_dropout.default", "aten.alpha_dropout.default",
          "aten.feature_alpha_dropout.default")
def _dropout(ctx, fx):
    a = ctx.args(fx)
    if a.get("train"):
        raise ctx.unsupported("dropout in training mode: call model.eval() before compiling")
    return ctx.emit1("dropout", [ctx.tensor(a["input"])], {"p": float(a["p"])})


# -- ONNX ------------------------------------------------------------------------------------------

@converts_onnx("Reshape")
def _from_onnx_reshape(ctx, node):
    """The shape input must be a compile-time constant (exporters' Shape/Gather/Concat chains are
    folded before this); 0 copies the input's dim (unless allowzero=1), -1 is inferred."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    target = [int(d) for d in np.asarray(ctx.required_const(1, "shape")).reshape(-1)]
    allowzero = int(ctx.attr("allowzero", 0)) if ctx.opset >= 14 else 0
    out = [shape[i] if d == 0 and not allowzero and i < len(shape) else d for i, d in enumerate(target)]
    if out.count(-1) > 1:
        raise ctx.unsupported(f"shape {target} has more than one -1")
    if -1 in out:
        known = numel([d for d in out if d != -1])
        if known == 0 or numel(shape) % known:
            raise ctx.unsupported(f"cannot reshape {list(shape)} to {target}")
        out[out.index(-1)] = numel(shape) // known
    return _onnx_reshape(ctx, x, out)


def _onnx_reshape(ctx, x, out):
    out = tuple(int(d) for d in out)
    if numel(out) != numel(ctx.shape(x)) or any(d < 1 for d in out):
        raise ctx.unsupported(f"cannot reshape {list(ctx.shape(x))} to {list(out)}")
    return x if out == ctx.shape(x) else ctx.emit1("reshape", [x], {"shape": out})


@converts_onnx("Flatten")
def _from_onnx_flatten(ctx, node):
    x = ctx.input(0)
    shape = ctx.shape(x)
    axis = int(ctx.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise ctx.unsupported(f"axis {axis} out of range for rank {len(shape)}")
    return _onnx_reshape(ctx, x, (numel(shape[:axis]), numel(shape[axis:])))


@converts_onnx("Squeeze")
def _from_onnx_squeeze(ctx, node):
    """axes: attribute before opset 13, optional input from 13 on; absent: every dim of size 1."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    axes = ctx.ints_operand("axes", 1, 13)
    if axes is None:
        drop = {i for i, d in enumerate(shape) if d == 1}
    else:
        drop = {a + len(shape) if a < 0 else a for a in axes}
        if any(not 0 <= a < len(shape) or shape[a] != 1 for a in drop):
            raise ctx.unsupported(f"cannot squeeze axes {list(axes)} of shape {list(shape)}")
    return _onnx_reshape(ctx, x, [d for i, d in enumerate(shape) if i not in drop])


@converts_onnx("Unsqueeze")
def _from_onnx_unsqueeze(ctx, node):
    """axes: attribute before opset 13, input from 13 on (positions in the output)."""
    x = ctx.input(0)
    shape = list(ctx.shape(x))
    axes = ctx.ints_operand("axes", 1, 13)
    if axes is None:
        raise ctx.unsupported("Unsqueeze without axes")
    rank = len(shape) + len(axes)
    norm = sorted(a + rank if a < 0 else a for a in axes)
    if any(not 0 <= a < rank for a in norm) or len(set(norm)) != len(norm):
        raise ctx.unsupported(f"bad Unsqueeze axes {list(axes)} for rank {len(shape)}")
    for a in norm:
        shape.insert(a, 1)
    return _onnx_reshape(ctx, x, shape)


@converts_onnx("Identity")
def _from_onnx_identity(ctx, node):
    return ctx.input(0)


@converts_onnx("Dropout")
def _from_onnx_dropout(ctx, node):
    """Inference: the identity (training_mode, an input from opset 12 on, must be false)."""
    training = ctx.const(2) if ctx.opset >= 12 else None
    if (ctx.opset >= 12 and ctx.has_input(2) and (training is None or bool(np.asarray(training).reshape(-1)[0]))) \
            or (ctx.opset < 7 and int(ctx.attr("is_test", 0)) == 0 and ctx.has_attr("is_test")):
        raise ctx.unsupported("Dropout in training mode is not supported: export the model in eval mode")
    if ctx.output_used(1):
        raise ctx.unsupported("Dropout's mask output is not supported")
    return ctx.input(0), ""


@converts_onnx("Cast")
def _from_onnx_cast(ctx, node):
    """A float -> float cast of an activation is the identity (float16/64 are computed in float32)."""
    to = int(ctx.attr("to"))
    x = ctx.input(0)
    if to in (1, 10, 11) and ctx.info(x).dtype.value == "float32":
        return x
    raise ctx.unsupported(f"Cast of a {ctx.info(x).dtype.value} activation to ONNX type {to} is not supported")
