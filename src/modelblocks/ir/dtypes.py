"""The closed set of tensor element types, with their NumPy and C spellings."""

from __future__ import annotations

from enum import Enum

import numpy as np


class DType(str, Enum):
    float32 = "float32"
    int8 = "int8"
    uint8 = "uint8"
    int16 = "int16"
    uint16 = "uint16"  # only for constants the compiler makes (sparse column indices, row pointers)
    int32 = "int32"
    bool = "bool"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.value)

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def ctype(self) -> str:
        return _CTYPES[self]

    @property
    def is_float(self) -> bool:
        return self is DType.float32

    @classmethod
    def from_numpy(cls, dt) -> "DType":
        dt = np.dtype(dt)
        if dt == np.int64:  # indices: MCUs have no use for 64-bit integers
            return cls.int32
        if dt == np.float64:
            return cls.float32
        try:
            return cls(dt.name)
        except ValueError:
            raise ValueError(f"dtype {dt.name} is not supported (supported: {', '.join(d.value for d in cls)})") from None


_CTYPES = {
    DType.float32: "float",
    DType.int8: "int8_t",
    DType.uint8: "uint8_t",
    DType.int16: "int16_t",
    DType.uint16: "uint16_t",
    DType.int32: "int32_t",
    DType.bool: "uint8_t",
}
