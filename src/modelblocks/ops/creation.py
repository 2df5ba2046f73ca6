"""Tensors whose values do not depend on the model's inputs, only on their shapes.

`torch.zeros_like(x)`, `x.new_full(...)`, `torch.empty_like(x)` etc. of a model input reach the
converters (nodes whose inputs are all constants are folded by the frontend instead). They add no
IR op: the converter returns the name of a constant tensor with the shape and dtype torch computed,
which later passes fold into whatever reads it. `empty_like` / `new_empty` give zeros, so the C is
deterministic. `fill_(x, t)` with a tensor `t` computed from the inputs is an expand of `t`.
(`aten.scalar_tensor`, `arange`, `full`, `zeros` take no tensor inputs, so the frontend always
folds them and they need no converter here.)
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .layout import expand
from .registry import converts


def _numpy_dtype(ctx, torch_dtype) -> np.dtype:
    import torch  # noqa: PLC0415  (op files stay importable without torch for the C side)

    table = {torch.float32: np.float32, torch.float64: np.float32, torch.int64: np.int32, torch.int32: np.int32,
             torch.int16: np.int16, torch.int8: np.int8, torch.uint8: np.uint8, torch.bool: np.bool_}
    if torch_dtype not in table:
        raise ctx.unsupported(f"creating a tensor of dtype {torch_dtype} is not supported")
    return np.dtype(table[torch_dtype])


def full_like_output(ctx, fx, value, hint: str) -> str:
    """A constant shaped and typed like the fx node's result, filled with `value`."""
    val = fx.meta["val"]
    dtype = _numpy_dtype(ctx, val.dtype)
    shape = tuple(int(d) for d in val.shape)
    if dtype.kind in "iu" and not np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
        raise ctx.unsupported(f"fill value {value} does not fit the IR's {dtype.name} (int64 is int32 on the MCU)")
    return ctx.constant(np.full(shape, value, dtype=dtype), hint, DType.from_numpy(dtype))


@converts("aten.zeros_like.default", "aten.new_zeros.default", "aten.empty_like.default",
          "aten.new_empty.default", "aten.zero.default", "aten.new_empty_strided.default")
def _zeros(ctx, fx):
    return full_like_output(ctx, fx, 0, "zeros")


@converts("aten.ones_like.default", "aten.new_ones.default")
def _ones(ctx, fx):
    return full_like_output(ctx, fx, 1, "ones")


@converts("aten.full_like.default")
def _full_like(ctx, fx):
    return full_like_output(ctx, fx, ctx.args(fx)["fill_value"], "full")


@converts("aten.new_full.default")
def _new_full(ctx, fx):
    return full_like_output(ctx, fx, ctx.args(fx)["fill_value"], "full")


@converts("aten.fill.Scalar")
def _fill_scalar(ctx, fx):
    return full_like_output(ctx, fx, ctx.args(fx)["value"], "full")


@converts("aten.fill.Tensor")
def _fill_tensor(ctx, fx):
    a = ctx.args(fx)
    value = ctx.constant_value(a["value"])
    if value is not None:
        return full_like_output(ctx, fx, np.asarray(value).reshape(()).item(), "full")
    t = ctx.tensor(a["value"])
    out_dtype = DType.from_numpy(_numpy_dtype(ctx, fx.meta["val"].dtype))
    if ctx.info(t).dtype != out_dtype:
        raise ctx.unsupported(f"fill of a {out_dtype.value} tensor with a {ctx.info(t).dtype.value} value "
                              "computed from the inputs (a dtype conversion) is not supported")
    return expand(ctx, t, fx.meta["val"].shape)
