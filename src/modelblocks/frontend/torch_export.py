"""PyTorch frontend: nn.Module or ExportedProgram -> IR graph.

The model is captured with `torch.export` (non-strict first: it runs the user's Python as is and
is ten times faster; strict as fallback), then `run_decompositions({})` normalises aliases
(flatten -> view, contiguous -> clone) while keeping the MCU-level ops whole: linear, conv,
layer_norm, lstm, gru, scaled_dot_product_attention.

Each fx node is converted by the converter its op file registered for the aten overload.
Nodes whose tensor inputs are all compile-time constants (weights, buffers, arange, ...) are
evaluated by torch right here, so the IR only holds computation that depends on the inputs.
"""

from __future__ import annotations

import linecache
import operator
import os
import re
import warnings
from typing import Any, Sequence

import torch

from ..errors import ExportError, GraphError, InputError, UnsupportedOpError, where
from ..ir.dtypes import DType
from ..ir.graph import Graph, Tensor
from ..ir.verify import verify
from ..ops.registry import aten_converter, supported_aten
from .checks import check_finite
from .convert_context import ConvertContext, call_converter
from .diagnose import check_runs, quiet_torch, user_frame

_CHECKS_ONLY = frozenset({
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten._assert_async.msg",
    "aten._assert_async.default", "aten.sym_constrain_range.default", "aten.sym_constrain_range_for_size.default",
})
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_TORCH_DIR = os.path.dirname(torch.__file__)


def export_model(model: torch.nn.Module, example_inputs: Sequence[torch.Tensor]) -> torch.export.ExportedProgram:
    """torch.export with the error messages a user can act on."""
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected an nn.Module, got {type(model).__name__}")
    example_inputs = tuple(example_inputs)
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"example input {i} is a {type(x).__name__}; ModelBlocks takes a tuple of tensors")
    model = model.eval()
    errors = []
    for strict in (False, True):
        try:
            with torch.no_grad(), quiet_torch():
                ep = torch.export.export(model, example_inputs, strict=strict)
        except Exception as exc:  # torch raises many types here; we translate them below
            errors.append(exc)
        else:
            _check_export_matches_eager(model, ep, example_inputs)
            return ep
        if not strict:
            check_runs(model, example_inputs)  # inputs that do not fit the model: say so, skip the retry
    error = _explain_export_failure(errors[0])
    error.original = errors[0]  # torch's exception, for debugging; not chained to keep tracebacks short
    raise error from None


def _check_export_matches_eager(model: torch.nn.Module, ep, example_inputs) -> None:
    """Eager PyTorch may take fast paths that torch.export does not record (nn.TransformerEncoder's
    nested tensors for padding masks, MultiheadAttention's fused kernel): then the compiled model
    would faithfully compute something else than the user's model. Catch it on the example inputs."""
    def close(a, b):
        return not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                    and a.is_floating_point()) or torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)

    with torch.no_grad(), quiet_torch():
        eager = torch.utils._pytree.tree_leaves(model(*example_inputs))
        again = torch.utils._pytree.tree_leaves(model(*example_inputs))
        exported = torch.utils._pytree.tree_leaves(ep.module()(*example_inputs))
    if not all(close(a, b) for a, b in zip(eager, again)):
        return  # random ops (sdpa dropout, torch.rand): the converters reject them by name
    for k, (a, b) in enumerate(zip(eager, exported)):
        if not close(a, b):
            raise ExportError(
                f"output {k} of the exported graph differs from eager PyTorch on the example inputs: the eager "
                "model takes a fast path that torch.export does not capture (typically nn.TransformerEncoder with "
                "a padding mask and enable_nested_tensor=True, or nn.MultiheadAttention's fused inference path "
                "with fully masked rows). What to change: build nn.TransformerEncoder with "
                "enable_nested_tensor=False, and avoid rows whose keys are all masked")


def _explain_export_failure(exc: Exception) -> ExportError:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    place = ""
    for path, line, _fn in _FRAME.findall(text):
        if not path.startswith(_TORCH_DIR):
            code = linecache.getline(path, int(line)).strip()
            place = f" at {os.path.basename(path)}:{line}" + (f" (`{code}`)" if code else "")
    if not place and user_frame(exc.__traceback__):
        place = f" at {user_frame(exc.__traceback__)}"
    data_dependent = any(k in text for k in ("data-dependent", "GuardOnDataDependent", "Could not guard",
                                             "could not extract specialized integer", "ConstraintViolation",
                                             "DataDependent", "u0", "item()"))
    if data_dependent:
        advice = ("the model's Python control flow or shapes depend on tensor values (e.g. `if x.sum() > 0`, "
                  "`.item()`, `.nonzero()`). A microcontroller program needs one static graph: replace the "
                  "branch with torch.where, or compute the condition from shapes or constructor arguments")
    else:
        advice = "check that forward() takes only tensors and runs with the example inputs' shapes"
    return ExportError(f"torch.export could not capture the model{place}: {first}\nWhat to change: {advice}.")


def _source_line(fx_node) -> str:
    trace = fx_node.meta.get("stack_trace") or ""
    found = ""
    for path, line, _fn in _FRAME.findall(trace):
        if not (path.startswith(_TORCH_DIR) or "<" in path):
            found = f"{os.path.basename(path)}:{line}"
    return found


def _scope(fx_node) -> str:
    stack = fx_node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    # strict export spells paths as L['self'].blocks[0].fc
    path = re.sub(r"^L\['self'\]\.?", "", path)
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    path = re.sub(r"\._modules\['([^']+)'\]", r".\1", path)
    return path.strip(".")


def _symbol(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "t"


def from_exported_program(ep: torch.export.ExportedProgram, name: str = "model",
                          allow_nonfinite: bool = False) -> Graph:
    with warnings.catch_warnings():  # torch's own deprecation notices are not the user's business
        warnings.simplefilter("ignore", FutureWarning)
        ep = ep.run_decompositions({})
    graph = Graph(name=name)
    sig = ep.graph_signature
    consts: dict[str, torch.Tensor] = {}  # placeholder name -> constant value
    for spec in sig.input_specs:
        kind = spec.kind.name
        if kind in ("PARAMETER", "BUFFER"):
            consts[spec.arg.name] = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
        elif kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ"):
            value = ep.constants[spec.target]
            if not isinstance(value, torch.Tensor):
                raise UnsupportedOpError(f"custom object {spec.target} in the exported program is not supported")
            consts[spec.arg.name] = value
    check_finite(((s.target, consts[s.arg.name].detach().cpu().float().numpy(), s.kind.name != "PARAMETER")
                  for s in sig.input_specs if s.arg.name in consts and consts[s.arg.name].is_floating_point()),
                 "the model", allow_nonfinite)

    targets = {s.arg.name: s.target for s in sig.input_specs if s.target}
    env: dict[Any, Any] = {}  # fx node -> IR name / tuple of names
    const_env: dict[Any, Any] = {}  # fx node -> torch value, for compile-time constants
    materialized: dict[int, str] = {}

    def constant_of(value):
        if isinstance(value, torch.fx.Node):
            return const_env.get(value)
        return None

    def materialize(fx_value, hint: str) -> str:
        tensor = const_env[fx_value]
        key = id(tensor)
        if key not in materialized:
            data = tensor.detach().cpu()
            if data.dtype == torch.bfloat16 or data.dtype == torch.float16 or data.dtype == torch.float64:
                data = data.float()
            materialized[key] = graph.add_constant(_symbol(hint), data.numpy().copy()).name
        return materialized[key]

    def resolve(value) -> str:
        if isinstance(value, torch.fx.Node):
            if value in const_env:
                return materialize(value, targets.get(value.name, value.name))
            ir = env.get(value)
            if ir == "":
                raise UnsupportedOpError(f"{_unproduced(value)}{where(_scope(value), _source_line(value))}")
            if isinstance(ir, str):
                return ir
            raise GraphError(f"value {value.name} is not a single tensor (got {ir!r})")
        raise UnsupportedOpError(f"expected a tensor argument, got {type(value).__name__} {value!r}")

    def const_for_ctx(value):
        c = constant_of(value)
        return None if c is None else c.detach().cpu().numpy()

    ctx = ConvertContext(graph, resolve, const_for_ctx)

    for fx_node in ep.graph.nodes:
        if fx_node.op == "placeholder":
            if fx_node.name in consts:
                const_env[fx_node] = consts[fx_node.name]
                continue
            val = fx_node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                raise InputError(f"model input {fx_node.name} is not a tensor ({type(val).__name__})")
            _check_static(val, fx_node.name)
            if val.dtype == torch.float64:  # a model in double: the MCU's float32 C, checked against it
                warnings.warn(f"model input '{fx_node.name}' is float64: the C computes in float32 (the weights "
                              "are stored in float32 too) and verify() compares it with the float64 model",
                              stacklevel=2)
            dtype = _ir_dtype(val.dtype, fx_node.name)
            name = graph.unique_name(_symbol(fx_node.name))
            graph.add_tensor(Tensor(name, tuple(int(d) for d in val.shape), dtype))
            graph.inputs.append(name)
            env[fx_node] = name
        elif fx_node.op == "call_function":
            _convert_call(fx_node, ctx, env, const_env)
        elif fx_node.op == "output":
            for out, spec in zip(fx_node.args[0], sig.output_specs):
                if spec.kind.name != "USER_OUTPUT":
                    raise UnsupportedOpError(_mutation_message(spec))
                if out is None or not isinstance(out, torch.fx.Node):
                    raise UnsupportedOpError(f"model output {out!r} is not a tensor")
                graph.outputs.append(resolve(out))
        else:
            raise UnsupportedOpError(f"fx node kind {fx_node.op} ({fx_node.target}) is not supported")
    graph.remove_unused_tensors()
    _name_outputs(graph)
    verify(graph, after="capture")
    return graph


def _is_inference_dropout(fx_node) -> bool:
    name = str(fx_node.target)
    return "dropout" in name and not any(a is True for a in list(fx_node.args[2:]) + [fx_node.kwargs.get("train")])


def _unproduced(fx_value) -> str:
    """Why a value the converters chose not to produce (pooling indices, norm statistics) is used."""
    if fx_value.target is operator.getitem:
        src, idx = fx_value.args
        return (f"output {idx} of {src.target} (e.g. max-pool indices or normalisation statistics) is not "
                "supported; only the main result is. What to change: do not use or return it")
    return f"value {fx_value.name} is not supported"


def _mutation_message(spec) -> str:
    what = {"BUFFER_MUTATION": f"buffer '{spec.target}'", "USER_INPUT_MUTATION": f"input '{spec.target}'"}
    thing = what.get(spec.kind.name, f"'{spec.target}' ({spec.kind.name.lower()})")
    return (f"the model's forward() modifies {thing} in place. Compiled C is stateless: every call must "
            "compute the same function of its inputs. What to change: compute a new tensor instead of "
            "modifying the buffer or input (e.g. `y = x * 2` rather than `x.mul_(2)`), or move state "
            "updates out of forward()")


def _name_outputs(graph: Graph) -> None:
    """Computed outputs are called output (or output0, output1, ...) in the IR, reports and C."""
    produced = {o for n in graph.nodes for o in n.outputs}
    for k, name in enumerate(list(graph.outputs)):
        wanted = "output" if len(graph.outputs) == 1 else f"output{k}"
        if name in produced and graph.outputs.count(name) == 1 and wanted not in graph.tensors:
            graph.rename_tensor(name, wanted)


def _check_static(val: torch.Tensor, what: str) -> None:
    if any(isinstance(d, int) and d == 0 for d in val.shape):
        raise ExportError(f"{what} has an empty dimension (shape {list(val.shape)}); a compiled model needs "
                          "tensors with at least one element. What to change: give example inputs whose "
                          "dimensions are all at least 1")
    for d in val.shape:
        if not isinstance(d, int):
            raise ExportError(f"{what} has a dynamic dimension ({d}); ModelBlocks compiles static shapes only. "
                              "What to change: export without dynamic_shapes, with the exact input shape")


def _ir_dtype(dtype: torch.dtype, what: str) -> DType:
    mapping = {torch.float32: DType.float32, torch.float64: DType.float32, torch.float16: DType.float32,
               torch.int64: DType.int32, torch.int32: DType.int32, torch.int16: DType.int16, torch.int8: DType.int8,
               torch.uint8: DType.uint8, torch.bool: DType.bool}
    if dtype not in mapping:
        kind = "complex numbers" if dtype.is_complex else str(dtype).replace("torch.", "")
        raise UnsupportedOpError(
            f"{what} has dtype {str(dtype).replace('torch.', '')}: the generated C has no {kind}, only float32, "
            "integer and bool tensors. What to change: "
            + ("pass the real and imaginary parts as float32 tensors (torch.view_as_real outside the model)"
               if dtype.is_complex else "convert it to float32 or an integer type outside the model"))
    return mapping[dtype]


def _fx_inputs(fx_node) -> list:
    found = []
    torch.fx.node.map_arg((fx_node.args, fx_node.kwargs), lambda n: found.append(n) or n)
    return found


def _convert_call(fx_node, ctx: ConvertContext, env: dict, const_env: dict) -> None:
    target = fx_node.target
    if target is operator.getitem:
        src, idx = fx_node.args
        if src in const_env:
            const_env[fx_node] = const_env[src][idx]
        else:
            value = env[src]
            env[fx_node] = value[idx] if isinstance(value, (tuple, list)) else value
        return

    if str(target) in _CHECKS_ONLY:  # run-time assertions torch.export adds: shapes are static here
        return
    inputs = _fx_inputs(fx_node)
    if all(i in const_env for i in inputs):
        if torch.Tag.nondeterministic_seeded in getattr(target, "tags", ()) and not _is_inference_dropout(fx_node):
            raise UnsupportedOpError(
                f"random op {target}{where(_scope(fx_node), _source_line(fx_node))} in forward(): compiled C is "
                "deterministic. What to change: compute random values outside the model and pass them as inputs")
        # compile-time constant (weights, arange, zeros, positional encodings): let torch compute it
        args, kwargs = torch.fx.node.map_arg((fx_node.args, fx_node.kwargs), lambda n: const_env[n])
        with torch.no_grad():
            const_env[fx_node] = target(*args, **kwargs)
        return

    name = str(target)
    scope, source = _scope(fx_node), _source_line(fx_node)
    converter = aten_converter(name)
    if converter is None:
        raise UnsupportedOpError(
            f"unsupported op {name}{where(scope, source)}.\n"
            f"Supported aten ops: {', '.join(supported_aten())}")
    hint = _symbol(f"{scope}_{fx_node.name}" if scope else fx_node.name)
    ctx.at(name, scope, source, hint)
    result = call_converter(converter, ctx, fx_node, name, scope, source)
    env[fx_node] = result
    _check_against_torch(fx_node, result, ctx, name, scope, source)


def _check_against_torch(fx_node, result, ctx: ConvertContext, name: str, scope: str, source: str) -> None:
    """The op's shape rule must agree with torch's fake-tensor shapes: catch converter bugs early."""
    val = fx_node.meta.get("val")
    vals = val if isinstance(val, (tuple, list)) else [val]
    results = result if isinstance(result, (tuple, list)) else [result]
    for v, r in zip(vals, results):
        if isinstance(v, torch.Tensor) and isinstance(r, str) and r:
            _check_static(v, f"the result of {name}{where(scope, source)}")
            got = ctx.graph.tensors[r]
            if tuple(v.shape) != got.shape or _ir_dtype(v.dtype, name) != got.dtype:
                raise GraphError(f"converter for {name}{where(scope, source)} produced {got.dtype.value}"
                                 f"{list(got.shape)}, torch says {v.dtype}{list(v.shape)} (ModelBlocks bug)")
