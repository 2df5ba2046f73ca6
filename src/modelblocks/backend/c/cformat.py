"""Small tested helpers that spell values in C: exact float literals, identifiers, arrays."""

from __future__ import annotations

import math
import re

import numpy as np


def float_literal(value: float) -> str:
    """The shortest decimal that reads back as the same float32, with an `f` suffix.

    NumPy's float32 `str` is the shortest round-trip representation (Ryu-style), so 1e-07 stays
    1e-07 instead of becoming 0.000000 as with printf's `%f`.
    """
    x = np.float32(value)
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    text = str(x)
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def int_literal(value: int) -> str:
    value = int(value)
    if value == -(2**31):  # -2147483648 is unary minus applied to an unsigned-long literal in C
        return "(-2147483647 - 1)"
    return str(value)


def c_identifier(text: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text)
    ident = re.sub(r"_+", "_", ident).strip("_") or "t"
    return ident if not ident[0].isdigit() else f"t_{ident}"


def array_body(values: np.ndarray, per_line: int = 8, indent: str = "    ") -> str:
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.float32:
        items = [float_literal(v) for v in flat.tolist()]
    else:
        items = [int_literal(v) for v in flat.tolist()]
    lines = [indent + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join(lines)


def shape_text(shape) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"
