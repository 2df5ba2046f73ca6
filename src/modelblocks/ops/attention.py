"""attention: scaled dot-product attention, softmax(q @ k^T * scale + mask) @ v.

Sources: aten.scaled_dot_product_attention. q is (..., L, E), k (..., S, E), v (..., S, Ev); the
batch dims broadcast as in torch and the result is (..., L, Ev). The optional mask input
broadcasts to (..., L, S): bool (True = attend) or float (added to the scores). `causal` masks
key j > query i (top-left aligned, as torch). With `enable_gqa`, q has Hq heads (dim -3) and
k, v have Hkv heads dividing Hq: query head h reads key/value head h // (Hq / Hkv). A query row
whose keys are all masked gives zeros, as PyTorch's CPU kernels do.

The kernel computes one query row at a time with S floats of scratch for the scores; the emitter
expresses broadcasting and GQA as per-operand batch strides, so nothing is copied.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.dtypes import DType
from .binary import broadcast_strides, collapse
from .registry import MAX_RANK, Attr, OpDef, converts, numel, register



def _batch_shape(node, q, k, v, m):
    """Output batch dims; validates operand shapes (raises ValueError)."""
    if len(q.shape) < 2 or len(k.shape) < 2 or len(v.shape) < 2:
        raise ValueError("query, key and value need rank >= 2")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"query {list(q.shape)} and key {list(k.shape)} differ in the embedding size")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"key {list(k.shape)} and value {list(v.shape)} differ in the sequence length")
    qb, kb, vb = q.shape[:-2], k.shape[:-2], v.shape[:-2]
    if node.attrs["enable_gqa"]:
        if not qb or not kb or not vb or kb[-1] != vb[-1] or kb[-1] == 0 or qb[-1] % kb[-1]:
            raise ValueError(f"enable_gqa needs q heads {qb[-1:]} to be a multiple of the k/v heads {kb[-1:]}, {vb[-1:]}")
        kb = kb[:-1] + (qb[-1],)
        vb = vb[:-1] + (qb[-1],)
    batch = tuple(np.broadcast_shapes(qb, kb, vb))
    if m is not None:
        full = batch + (q.shape[-2], k.shape[-2])
        if tuple(np.broadcast_shapes(m.shape, full)) != full:
            raise ValueError(f"mask {list(m.shape)} does not broadcast to the scores' shape {list(full)}")
    if len(batch) > MAX_RANK:
        raise ValueError(f"more than {MAX_RANK} batch dimensions")
    return batch


def _infer(node, ins):
    q, k, v, m = ins
    for t in (q, k, v):
        if t.dtype != DType.float32:
            raise ValueError(f"attention takes float32 query/key/value, got {t.dtype.value}")
    if m is not None and m.dtype not in (DType.float32, DType.bool):
        raise ValueError(f"attention mask must be bool or float32, got {m.dtype.value}")
    if m is not None and node.attrs["causal"]:
        raise ValueError("a mask together with causal=True is not supported")
    batch = _batch_shape(node, q, k, v, m)
    return [(batch + (q.shape[-2], v.shape[-1]), DType.float32)]


def _reference(node, args):
    q, k, v, m = args
    q, k, v = (t.astype(np.float64) for t in (q, k, v))
    if node.attrs["enable_gqa"] and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * node.attrs["scale"]
    L, S = q.shape[-2], k.shape[-2]
    allowed = np.ones((L, S), dtype=bool)
    if node.attrs["causal"]:
        allowed = np.tril(allowed)
    if m is not None and m.dtype == np.bool_:
        allowed = allowed & m
    elif m is not None:
        s = s + m.astype(np.float64)
    allowed = np.broadcast_to(allowed, s.shape)
    s = np.where(allowed, s, -np.inf)
    mx = np.max(s, axis=-1, keepdims=True)
    empty = ~np.isfinite(mx) & (mx < 0)
    with np.errstate(invalid="ignore"):
        e = np.exp(s - np.where(empty, 0.0, mx))
        p = e / np.sum(e, axis=-1, keepdims=True)
    p = np.where(empty, 0.0, p)
    return [np.matmul(p, v).astype(np.float32)]


def _emit(ctx, node):
    q, k, v, m = node.inputs
    qs, ks, vs = ctx.shape(q), ctx.shape(k), ctx.shape(v)
    ms = ctx.shape(m) if m else ()
    out = ctx.shape(node.outputs[0])
    L, E, S, Ev = qs[-2], qs[-1], ks[-2], vs[-1]
    batch = tuple(out[:-2])
    rank = len(batch)
    pad = lambda s: (1,) * (rank - len(s)) + tuple(s)  # noqa: E731
    qb, kb, vb = pad(qs[:-2]), pad(ks[:-2]), pad(vs[:-2])
    mb = pad(ms[:-2]) if len(ms) >= 2 else (1,) * rank
    m_rows, m_cols = (((1,) * 2 + tuple(ms))[-2:]) if m else (1, 1)
    if node.attrs["enable_gqa"] and kb[-1] != qb[-1]:
        # split the head dim h = g_kv * group + j: q, mask and output walk (Hkv, group); k, v (Hkv, 1)
        hkv, group = kb[-1], qb[-1] // kb[-1]
        batch = batch[:-1] + (hkv, group)
        qb = qb[:-1] + (hkv, group)
        kb, vb = kb[:-1] + (hkv, 1), vb[:-1] + (hkv, 1)
        mb = mb[:-1] + ((hkv, group) if mb[-1] != 1 else (1, 1))
    q_bs = broadcast_strides(qb + (L, E), batch + (L, E))[:-2]
    k_bs = broadcast_strides(kb + (S, E), batch + (S, E))[:-2]
    v_bs = broadcast_strides(vb + (S, Ev), batch + (S, Ev))[:-2]
    m_full = broadcast_strides(mb + (m_rows, m_cols), batch + (L, S))
    dims, (q_bs, k_bs, v_bs, m_bs) = collapse(list(batch), q_bs, k_bs, v_bs, m_full[:-2])
    is_bool = bool(m) and ctx.tensor(m).dtype == DType.bool
    fmask = ctx.ptr(m) if m and not is_bool else "NULL"
    bmask = ctx.ptr(m) if is_bool else "NULL"
    return (f"mb_attention_f32({ctx.ptr(q)}, {ctx.ptr(k)}, {ctx.ptr(v)}, {fmask}, {bmask}, "
            f"{ctx.ptr(node.outputs[0])}, {ctx.scratch(node)}, {len(dims)}, {ctx.ints(dims, 'dims')}, "
            f"{ctx.ints(q_bs, 'strides')}, {ctx.ints(k_bs, 'strides')}, {ctx.ints(v_bs, 'strides')}, "
            f"{ctx.ints(m_bs, 'strides')}, {m_full[-2]}, {m_full[-1]}, {L}, {S}, {E}, {Ev}, "
            f"{ctx.f(node.attrs['scale'])}, {int(node.attrs['causal'])});")


def _macs(node, ins, outs):
    rows = numel(outs[0].shape[:-1])
    return rows * ins[1].shape[-2] * (ins[0].shape[-1] + ins[2].shape[-1])


register(OpDef(
    name="attention", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_attention",),
    attrs={"scale": Attr("float"), "causal": Attr("bool", False), "enable_gqa": Attr("bool", False)},
    num_inputs=(3, 4), macs=_macs,
    scratch_bytes=lambda node, ins, outs: 4 * max(ins[1].shape[-2], 1),
    doc="softmax(q @ k^T * scale + mask) @ v",
))


@converts("aten.scaled_dot_product_attention.default")
def _from_sdpa(ctx, fx):
    a = ctx.args(fx)
    if float(a["dropout_p"] or 0.0) != 0.0:
        raise ctx.unsupported(f"scaled_dot_product_attention with dropout_p={a['dropout_p']}: dropout must be 0 "
                              "at inference (pass dropout_p=0.0 when not training)")
    q, k, v = ctx.tensor(a["query"]), ctx.tensor(a["key"]), ctx.tensor(a["value"])
    mask = ""
    if a["attn_mask"] is not None:
        mask = ctx.tensor(a["attn_mask"])
        if ctx.info(mask).dtype not in (DType.bool, DType.float32):
            raise ctx.unsupported(f"attn_mask of dtype {ctx.info(mask).dtype.value} (use bool or float)")
        if a["is_causal"]:
            raise ctx.unsupported("attn_mask together with is_causal=True is not supported: "
                                  "fold the causal mask into attn_mask")
    gqa = bool(a.get("enable_gqa", False))
    if gqa and (len(ctx.shape(q)) < 3 or len(ctx.shape(k)) < 3 or len(ctx.shape(v)) < 3):
        raise ctx.unsupported("enable_gqa needs query, key and value of rank >= 3 (heads at dim -3)")
    scale = a["scale"]
    if scale is None:
        scale = 1.0 / math.sqrt(ctx.shape(q)[-1])
    return ctx.emit1("attention", [q, k, v, mask],
                     {"scale": float(scale), "causal": bool(a["is_causal"]), "enable_gqa": gqa})
