"""embedding: y[..., :] = weight[indices[...], :], a table lookup.

Sources: aten.embedding (nn.Embedding, F.embedding). Weight is [num, dim] (float32), indices are
int32 of any shape (torch's int64 inputs arrive as int32). padding_idx only affects training and
is ignored. An index in [-num, 0) counts from the end, as NumPy and ONNX Gather (which also
lands here) do. Any other index outside [0, num) -- torch raises an error there -- gives a row of
zeros in both the reference and the C kernel (which counts them in its return value), never an
out-of-bounds read.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import OpDef, converts, numel, register


def _infer(node, ins):
    w, idx = ins
    if w.dtype != DType.float32 or len(w.shape) != 2:
        raise ValueError(f"embedding weight must be a float32 matrix, got {w.dtype.value}{list(w.shape)}")
    if idx.dtype != DType.int32:
        raise ValueError(f"embedding indices must be int32, got {idx.dtype.value}")
    return [(idx.shape + (w.shape[1],), DType.float32)]


def _reference(node, args):
    w, idx = args
    idx = np.asarray(idx, dtype=np.int64)
    idx = np.where((idx < 0) & (idx >= -w.shape[0]), idx + w.shape[0], idx)  # from the end, as NumPy does
    valid = (idx >= 0) & (idx < w.shape[0])
    rows = w[np.where(valid, idx, 0)] if w.shape[0] else np.zeros(idx.shape + (w.shape[1],), np.float32)
    return [np.where(valid[..., None], rows, np.float32(0)).astype(np.float32)]


def _emit(ctx, node):
    w, idx = node.inputs
    num, dim = ctx.shape(w)
    return (f"(void)mb_embedding_f32({ctx.ptr(w)}, {ctx.ptr(idx)}, {ctx.ptr(node.outputs[0])}, "
            f"{numel(ctx.shape(idx))}, {num}, {dim});")


register(OpDef(
    name="embedding", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_embedding",),
    num_inputs=(2, 2), doc="row lookup weight[indices]; [-num, 0) counts from the end, other out-of-range indices give zero rows",
))


@converts("aten.embedding.default")
def _from_embedding(ctx, fx):
    a = ctx.args(fx)
    if a.get("sparse"):
        raise ctx.unsupported("embedding with sparse=True is not supported")
    idx = ctx.tensor(a["indices"])
    if ctx.info(idx).dtype != DType.int32:
        raise ctx.unsupported(f"embedding indices of dtype {ctx.info(idx).dtype.value} (integer indices expected)")
    return ctx.emit1("embedding", [ctx.tensor(a["weight"]), idx])
