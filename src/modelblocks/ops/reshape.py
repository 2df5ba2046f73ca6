"""Ops that move no data: reshape (a view: no code, shares its input's memory) and identity /
dropout (removed by `passes/remove_identity.py`, a memcpy if they survive).

reshape covers view, reshape, flatten, squeeze and unsqueeze: the target shape is the one torch
computed for the node.
"""

from __future__ import annotations

import numpy as np

from .registry import Attr, OpDef, Prop, converts, numel, register


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
