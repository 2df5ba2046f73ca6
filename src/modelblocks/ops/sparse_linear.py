"""linear_sparse / q_linear_sparse: fully connected layers whose weight matrix is stored in CSR
(compressed sparse rows, one row per output feature), for weights that pruning left mostly zero.

Not produced by the frontend: `passes/sparsify.py` rewrites a `linear` (float32) or `q_linear`
(int8) node into its sparse form when that saves flash bytes and instructions. Inputs:

    x          float32 / int8 [..., in_features]
    values     float32 / int8 [nnz]      the nonzero weights of W [out, in], row by row, columns increasing
    col_index  uint8 [nnz] when in_features <= 256, else uint16: the column of each value
    row_ptr    uint16 [out + 1] when nnz < 65536, else int32: row o is values[row_ptr[o]:row_ptr[o + 1]]
    linear_sparse:   bias float32 [out] or absent
    q_linear_sparse: bias int32 [out], mult int32 [out], shift int8 [out] (as q_linear)

Attribute `in_features` gives W's column count (x's last dimension). The arithmetic is the dense
op's (ops/linear.py, ops/q_linear.py) with the zero terms left out: the NumPy reference rebuilds W
and runs the dense computation, so the interpreter's values are exactly the dense op's; the C kernel
(kernels/mb_sparse_linear.c) sums the nonzeros in the dense kernel's order. MACs count the nonzeros.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..quant import arith
from .q_linear import (Q_ATTRS, XW_MAX, acc_bound_ok, bias_bound, check_q_attrs, check_tables, finish)
from .registry import CLAMP_ATTRS, Attr, OpDef, Prop, apply_clamp, numel, register

COL_DTYPES = (DType.uint8, DType.uint16)
PTR_DTYPES = (DType.uint16, DType.int32)
MAX_IN_FEATURES = 65536  # a uint16 column index reaches column 65535


# -- CSR helpers (shared with passes/sparsify.py) ----------------------------------------------------

def col_dtype(in_features: int) -> DType:
    """The column index type: uint8 while every column fits in a byte, else uint16."""
    if in_features > MAX_IN_FEATURES:
        raise ValueError(f"{in_features} input features: a sparse weight holds at most {MAX_IN_FEATURES}")
    return DType.uint8 if in_features <= 256 else DType.uint16


def ptr_dtype(nnz: int) -> DType:
    """The row pointer type: uint16 while nnz < 65536 (row_ptr's last entry is nnz), else int32."""
    return DType.uint16 if nnz < 65536 else DType.int32


def to_csr(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, col_index, row_ptr) of a 2-D weight [out, in], in the dtypes above. NaN counts as nonzero."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"a CSR weight is 2-D, got shape {list(w.shape)}")
    out_features, in_features = w.shape
    rows, cols = np.nonzero(w)  # row-major order: rows ascending, columns ascending within a row
    nnz = int(rows.size)
    row_ptr = np.zeros(out_features + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=out_features), out=row_ptr[1:])
    return (np.ascontiguousarray(w[rows, cols]), cols.astype(col_dtype(in_features).numpy),
            row_ptr.astype(ptr_dtype(nnz).numpy))


def csr_nbytes(out_features: int, in_features: int, nnz: int, value_bytes: int) -> int:
    """Flash bytes of values + col_index + row_ptr, as to_csr stores them."""
    return (nnz * (value_bytes + col_dtype(in_features).itemsize)
            + (out_features + 1) * ptr_dtype(nnz).itemsize)


def densify(values: np.ndarray, col_index: np.ndarray, row_ptr: np.ndarray, in_features: int) -> np.ndarray:
    """The dense [out, in] matrix (zeros where CSR stores nothing), in values' dtype."""
    out_features = len(row_ptr) - 1
    w = np.zeros((out_features, in_features), dtype=values.dtype)
    rows = np.repeat(np.arange(out_features), np.diff(row_ptr.astype(np.int64)))
    w[rows, col_index.astype(np.int64)] = values
    return w


def check_csr(node, values, col_index, row_ptr, value_dtype: DType) -> tuple[int, int, int]:
    """Checks the three CSR tensors (and their data: a bad index would read out of bounds in C);
    returns (out_features, nnz, most nonzeros in one row)."""
    in_features = node.attrs["in_features"]
    if not 1 <= in_features <= MAX_IN_FEATURES:
        raise ValueError(f"in_features={in_features} must lie in [1, {MAX_IN_FEATURES}]")
    for t, what in ((values, "values"), (col_index, "col_index"), (row_ptr, "row_ptr")):
        if t is None or len(t.shape) != 1:
            got = "nothing" if t is None else f"{t.dtype.value}{list(t.shape)}"
            raise ValueError(f"{what} must be a 1-D tensor, got {got}")
        if not t.is_constant:
            raise ValueError(f"{what} ({t.name}) must be a constant")
    if values.dtype != value_dtype:
        raise ValueError(f"values must be {value_dtype.value}, got {values.dtype.value}")
    if col_index.dtype not in COL_DTYPES or row_ptr.dtype not in PTR_DTYPES:
        raise ValueError(f"col_index must be uint8 or uint16 and row_ptr uint16 or int32, got "
                         f"{col_index.dtype.value} and {row_ptr.dtype.value}")
    nnz = values.shape[0]
    if col_index.shape[0] != nnz:
        raise ValueError(f"col_index holds {col_index.shape[0]} entries for {nnz} values")
    if row_ptr.shape[0] < 1:
        raise ValueError("row_ptr needs out_features + 1 >= 1 entries")
    if in_features - 1 > np.iinfo(col_index.dtype.numpy).max or nnz > np.iinfo(row_ptr.dtype.numpy).max:
        raise ValueError(f"{col_index.dtype.value} column indices / {row_ptr.dtype.value} row pointers cannot hold "
                         f"{in_features} columns / {nnz} nonzeros")
    ptr = row_ptr.data.astype(np.int64)
    cols = col_index.data.astype(np.int64)
    counts = np.diff(ptr)
    if ptr[0] != 0 or ptr[-1] != nnz or np.any(counts < 0):
        raise ValueError(f"row_ptr must rise from 0 to nnz={nnz}, got first {ptr[0]}, last {ptr[-1]}"
                         + (", and it decreases" if np.any(counts < 0) else ""))
    if nnz and cols.max() >= in_features:
        raise ValueError(f"col_index holds column {cols.max()}, but in_features={in_features}")
    starts = np.zeros(nnz, dtype=bool)
    starts[ptr[:-1][counts > 0]] = True
    if nnz > 1 and np.any((np.diff(cols) <= 0) & ~starts[1:]):
        raise ValueError("column indices must increase strictly within each row")
    return row_ptr.shape[0] - 1, nnz, int(counts.max(initial=0))


def _rows_and_x(node, x, value_dtype: DType) -> None:
    if x is None or x.dtype != value_dtype:
        raise ValueError(f"{node.op} takes {value_dtype.value} x, got {'nothing' if x is None else x.dtype.value}")
    if not x.shape or x.shape[-1] != node.attrs["in_features"]:
        raise ValueError(f"input {list(x.shape)} does not match in_features={node.attrs['in_features']}")


def _suffix(ctx, col_index: str, row_ptr: str) -> str:
    c = "c8" if ctx.tensor(col_index).dtype == DType.uint8 else "c16"
    p = "p16" if ctx.tensor(row_ptr).dtype == DType.uint16 else "p32"
    return f"{c}_{p}"


def _macs(node, ins, outs):
    return numel(outs[0].shape[:-1]) * ins[1].shape[0]


# -- linear_sparse (float32) ---------------------------------------------------------------------------

def _infer(node, ins):
    x, values, col_index, row_ptr, b = ins
    _rows_and_x(node, x, DType.float32)
    out_features, _nnz, _ = check_csr(node, values, col_index, row_ptr, DType.float32)
    if b is not None and (b.dtype != DType.float32 or b.shape != (out_features,)):
        raise ValueError(f"bias {b.dtype.value}{list(b.shape)} does not match {out_features} outputs")
    return [(x.shape[:-1] + (out_features,), DType.float32)]


def _reference(node, args):
    x, values, col_index, row_ptr, b = args
    w = densify(values, col_index, row_ptr, node.attrs["in_features"])
    y = np.matmul(x.astype(np.float64), w.astype(np.float64).T)  # exactly ops/linear.py's arithmetic
    if b is not None:
        y = y + b
    return [apply_clamp(y.astype(np.float32), node)]


def _emit(ctx, node):
    x, values, col_index, row_ptr, b = node.inputs
    out_features = ctx.shape(row_ptr)[0] - 1
    rows = numel(ctx.shape(x)[:-1])
    bias = ctx.ptr(b) if b else "NULL"
    return (f"mb_sparse_linear_f32_{_suffix(ctx, col_index, row_ptr)}({ctx.ptr(x)}, {ctx.ptr(values)}, "
            f"{ctx.ptr(col_index)}, {ctx.ptr(row_ptr)}, {bias}, {ctx.ptr(node.outputs[0])}, {rows}, "
            f"{node.attrs['in_features']}, {out_features}, {ctx.clamp(node)});")


register(OpDef(
    name="linear_sparse", infer=_infer, reference=_reference, emit=_emit,
    kernels=("mb_sparse_linear", "mb_quant"),  # one kernel file for both ops: it includes mb_quant.h
    attrs={"in_features": Attr("int"), **CLAMP_ATTRS}, num_inputs=(5, 5), macs=_macs,
    props=frozenset({Prop.FUSED_CLAMP}),
    doc="y = clamp(x @ W^T + b), W stored in CSR (values, col_index, row_ptr)",
))


# -- q_linear_sparse (int8) ----------------------------------------------------------------------------

def _q_infer(node, ins):
    x, values, col_index, row_ptr = ins[:4]
    check_q_attrs(node, ("in_zp", "out_zp"))
    _rows_and_x(node, x, DType.int8)
    out_features, _nnz, longest = check_csr(node, values, col_index, row_ptr, DType.int8)
    check_tables(ins[4:], out_features)
    if not acc_bound_ok(longest, XW_MAX, bias_bound(ins[4])):
        raise ValueError(f"{longest} nonzeros in one row may overflow the int32 accumulator")
    return [(x.shape[:-1] + (out_features,), DType.int8)]


def _q_reference(node, args):
    x, values, col_index, row_ptr, bias, mult, shift = args
    a = node.attrs
    w = densify(values, col_index, row_ptr, a["in_features"])
    acc = np.matmul(x.astype(np.int64) - a["in_zp"], w.astype(np.int64).T) + bias.astype(np.int64)
    return [finish(acc, mult.astype(np.int64), shift.astype(np.int64), a["out_zp"],
                   a.get("act_min", arith.QMIN), a.get("act_max", arith.QMAX))]


def _q_emit(ctx, node):
    x, values, col_index, row_ptr, bias, mult, shift = node.inputs
    a = node.attrs
    out_features = ctx.shape(row_ptr)[0] - 1
    rows = numel(ctx.shape(x)[:-1])
    return (f"mb_sparse_q_linear_s8_{_suffix(ctx, col_index, row_ptr)}({ctx.ptr(x)}, {ctx.ptr(values)}, "
            f"{ctx.ptr(col_index)}, {ctx.ptr(row_ptr)}, {ctx.ptr(bias)}, {ctx.ptr(mult)}, {ctx.ptr(shift)}, "
            f"{ctx.ptr(node.outputs[0])}, {rows}, {a['in_features']}, {out_features}, {ctx.i(a['in_zp'])}, "
            f"{ctx.i(a['out_zp'])}, {ctx.i(a.get('act_min', arith.QMIN))}, {ctx.i(a.get('act_max', arith.QMAX))});")


register(OpDef(
    name="q_linear_sparse", infer=_q_infer, reference=_q_reference, emit=_q_emit,
    kernels=("mb_sparse_linear", "mb_quant"), attrs={"in_features": Attr("int"), **Q_ATTRS}, num_inputs=(7, 7),
    macs=_macs,
    doc="int8 q_linear with W stored in CSR (values, col_index, row_ptr)",
))
