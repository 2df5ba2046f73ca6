"""TEMPLATE for a new op file: copy to ops/<family>.py, rename, fill in. (Files starting with '_'
are not loaded.) Checklist:

1. register(OpDef(...)) with: infer (shapes/dtypes from input Tensors and attrs; raise ValueError
   with a reason on bad input), reference (NumPy, independent of torch), emit (one C call), kernels
   (files in backend/c/kernels/ without extension), typed attrs, num_inputs, macs, scratch_bytes.
2. @converts("aten.<op>.<overload>") for each aten overload torch.export produces for it
   (export a tiny model with run_decompositions({}) and print the graph to see which).
   Raise ctx.unsupported("why") for options the kernel does not handle: never emit wrong C.
3. Kernel: backend/c/kernels/mb_<family>.{h,c}, C99, no malloc, const inputs, int32_t sizes,
   a header comment giving the memory layout of every parameter.
4. Test: tests/ops/test_<family>.py, parametrised named cases over several shapes and every option,
   each through helpers.check_model (torch vs NumPy reference vs C, relative L2 < 1e-5), one case
   with sanitize=True, and a test that an unsupported option raises UnsupportedOpError.
5. Add the op to the supported-ops table in README.md.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from .registry import Attr, OpDef, Prop, converts, numel, register


def _infer(node, ins):
    x = ins[0]
    if x.dtype != DType.float32:
        raise ValueError(f"takes float32, got {x.dtype.value}")
    return [(x.shape, DType.float32)]


def _reference(node, args):
    return [(args[0].astype(np.float64) * node.attrs["factor"]).astype(np.float32)]


def _emit(ctx, node):
    n = numel(ctx.shape(node.inputs[0]))
    return f"mb_example_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {n}, {ctx.f(node.attrs['factor'])});"


register(OpDef(
    name="example", infer=_infer, reference=_reference, emit=_emit, kernels=("mb_example",),
    attrs={"factor": Attr("float", 1.0)}, num_inputs=(1, 1), props=frozenset({Prop.ELEMENTWISE}),
    macs=lambda node, ins, outs: numel(outs[0].shape), doc="y = factor * x",
))


@converts("aten.example.default")
def _from_example(ctx, fx):
    a = ctx.args(fx)
    return ctx.emit1("example", [ctx.tensor(a["self"])], {"factor": float(a["factor"])})
