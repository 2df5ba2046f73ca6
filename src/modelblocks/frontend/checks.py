"""Checks on what a frontend captured, before any pass runs.

- Weights that are not finite numbers (a diverged training run, a broken checkpoint) would make
  the C compute NaN or Inf, and the verification would only say "differs". We refuse them here,
  naming each tensor and how many values are bad, unless the user forces it (allow_nonfinite),
  in which case they get a warning. A buffer or ONNX initializer whose only non-finite values are
  -inf is an additive attention mask, a legitimate constant, and passes.
- The generated C counts elements in int32_t and the MCU addresses its memory in 32 bits: a tensor
  of 2**31 bytes or more cannot be compiled, whatever the board.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from ..errors import InputError, NonFiniteWeightsWarning, where
from ..ir.graph import Graph
from ..quant.arith import INT32_MAX


def _bad_values(data: np.ndarray, mask_ok: bool) -> str:
    """'2 NaN, 1 +Inf of 128 values', or '' when the tensor is acceptable."""
    if data.dtype.kind not in "fc":
        return ""
    nan = int(np.isnan(data).sum())
    pos = int(np.isposinf(data).sum())
    neg = int(np.isneginf(data).sum())
    if nan == pos == neg == 0 or (mask_ok and nan == pos == 0):
        return ""
    counts = [f"{n} {what}" for n, what in ((nan, "NaN"), (pos, "+Inf"), (neg, "-Inf")) if n]
    return f"{', '.join(counts)} of {data.size} values"


def check_finite(tensors: Iterable[tuple[str, np.ndarray, bool]], source: str, allow: bool,
                 remedy: str = "") -> None:
    """`tensors`: (name, data, mask_ok) per weight; mask_ok for buffers and initializers, which may
    hold -inf as an attention mask. Raises InputError naming every bad tensor (or warns, if allowed);
    `remedy` replaces the default advice of the error."""
    bad = []
    for name, data, mask_ok in tensors:
        found = _bad_values(np.asarray(data), mask_ok)
        if found:
            bad.append(f"  {name}: {found}")
    if not bad:
        return
    shown = bad[:10] + ([f"  ... ({len(bad)} tensors in all)"] if len(bad) > 10 else [])
    head = f"{len(bad)} weight tensor(s) of {source} hold values that are not finite numbers:"
    if allow:
        warnings.warn("\n".join([head, *shown, "compiling anyway (allow_nonfinite): the C will compute NaN or Inf "
                                               "where these values reach an output"]),
                      NonFiniteWeightsWarning, stacklevel=3)
        return
    raise InputError("\n".join([head, *shown, remedy or "The C would compute NaN or Inf outputs. What to change: "
                                 "check the training run (a diverged loss) and the weights file; to compile anyway, "
                                 "pass allow_nonfinite=True (CLI: --allow-nonfinite)"]))


def check_sizes(graph: Graph) -> None:
    """Refuse tensors whose byte size does not fit the int32_t counts and offsets of the C."""
    producer = {out: node for node in graph.nodes for out in node.outputs}
    for tensor in graph.tensors.values():
        if tensor.nbytes > INT32_MAX:
            node = producer.get(tensor.name)
            place = where(node.scope, node.source, node.op) if node is not None else ""
            kind = "constant" if tensor.is_constant else "input" if tensor.name in graph.inputs else "tensor"
            raise InputError(
                f"{kind} '{tensor.name}'{place} has shape {list(tensor.shape)}: {tensor.numel:,} elements, "
                f"{tensor.nbytes:,} bytes, more than the 2**31 - 1 the generated C can count (int32_t) and far "
                "more than any microcontroller holds. What to change: compile with the deployment shape "
                "(a smaller --input-shape)")
