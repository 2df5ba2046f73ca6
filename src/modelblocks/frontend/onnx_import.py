"""ONNX frontend: an .onnx file (or an `onnx.ModelProto`) -> the same IR graph the torch frontend builds.

The model's input shapes must be static, or fixed by example inputs. `onnx.shape_inference` then
types every value; the frontend walks the nodes in order and

- evaluates every node whose inputs are all compile-time constants (initializers, Constant nodes,
  `Shape` of a static tensor, and whatever is computed from those: the Shape/Gather/Unsqueeze/Concat
  chains exporters write in front of Reshape) with `onnx.reference`, so the IR holds only the
  computation that depends on the model's inputs;
- converts each other node with the converter its op file registered through
  `@converts_onnx("Gemm", ...)` (ops/registry.py), which sees an `OnnxContext`: inputs as IR tensor
  names or constant arrays, attributes with ONNX's defaults, and the opset to decide where an
  operand lives (e.g. Squeeze's axes: attribute before opset 13, input from 13 on).

The IR node's scope is the ONNX node's name as a module path ("/blocks.0/attn/MatMul" ->
"blocks.0.attn"), which is what the exporters write there.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import GraphError, InputError, UnsupportedOpError, where
from ..ir.dtypes import DType
from ..ir.graph import Graph, Tensor
from ..ir.verify import verify
from ..ops.registry import REQUIRED, onnx_converter, supported_onnx
from . import onnx_qdq
from .checks import check_finite
from .convert_context import ConvertContext, call_converter

# ONNX TensorProto element types -> IR dtypes (64-bit values become 32-bit, as in the torch frontend)
_ELEM = {1: DType.float32, 11: DType.float32, 10: DType.float32, 7: DType.int32, 6: DType.int32, 5: DType.int16,
         3: DType.int8, 2: DType.uint8, 9: DType.bool}
_RANDOM = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")


def is_onnx_model(model) -> bool:
    """True for an `onnx.ModelProto` or a path ending in .onnx (what `compile` hands to this frontend)."""
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(".onnx")
    return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")


def _import_onnx():
    try:
        import onnx  # noqa: PLC0415
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise InputError("reading .onnx files needs the onnx package: pip install onnx") from None
    return onnx


def load_model(model) -> tuple[Any, str]:
    """(ModelProto, label for messages) from a path or a ModelProto; unreadable files -> InputError."""
    onnx = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        return model, f"ONNX model '{model.graph.name or 'model'}'"
    path = Path(model)
    if not path.is_file():
        raise InputError(f"ONNX file {path} does not exist")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError, ...
        raise InputError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}). What to change: "
                         "re-export it (torch.onnx.export) or check that the file was copied completely") from None
    if not proto.graph.node and not proto.graph.output:
        raise InputError(f"{path} is not a readable ONNX model: it holds no graph. What to change: re-export it "
                         "or check that the file was copied completely")
    return proto, str(path)


def _symbol(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "t"


def scope_of(node_name: str, metadata=()) -> str:
    """The module path of a node: torch.onnx's dynamo exporter writes it as metadata
    (pkg.torch.onnx.name_scopes ['', 'blocks.0', 'attn', 'linear'] -> 'blocks.0.attn'), the TorchScript
    exporter and others into the node name ('/blocks.0/attn/MatMul_1' -> 'blocks.0.attn')."""
    for prop in metadata:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                parts = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            return ".".join(str(p) for p in parts[1:-1] if p)
    if "/" not in node_name:
        return ""
    parts = [p for p in node_name.split("/")[:-1] if p]
    return ".".join(parts)


def _attr_value(attr) -> Any:
    import onnx  # noqa: PLC0415

    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    return value


class OnnxContext(ConvertContext):
    """What an ONNX converter sees: the node's inputs, attributes (with ONNX defaults), the opset,
    and ConvertContext's means to add IR nodes (`emit`, `emit1`, `constant`, `shape`, ...).

    `ctx.tensor(name)` and `ctx.constant_value(name)` take ONNX value names (or Python numbers), so
    the helpers op files share with their aten converters work unchanged."""

    def __init__(self, graph: Graph, resolve, constant_of, opset: int, model_label: str, used: set[str]):
        super().__init__(graph, resolve, constant_of)
        self.opset = opset
        self.model_label = model_label
        self.node = None
        self._used = used
        self.value_types: dict = {}  # ONNX value -> (dims, element type) from shape inference

    def elem_type(self, value_name: str) -> int | None:
        """The ONNX element type (TensorProto enum) of a value, when shape inference knows it."""
        found = self.value_types.get(value_name)
        return found[1] if found else None

    def at_node(self, node) -> None:
        scope = scope_of(node.name, node.metadata_props)
        self.node = node
        hint = _symbol(node.name or (node.output[0] if node.output else node.op_type))
        self.at(f"ONNX {node.op_type} node '{node.name or node.output[0]}' in {self.model_label}", scope, "", hint)
        self._attrs = {a.name: a for a in node.attribute}

    # -- inputs -------------------------------------------------------------------------------------
    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def input_name(self, i: int) -> str:
        """The ONNX value name of input i ("" when absent)."""
        return self.node.input[i] if self.has_input(i) else ""

    def input(self, i: int) -> str:
        """Input i as an IR tensor name (constants are added to the graph); "" when absent."""
        return self.tensor(self.node.input[i]) if self.has_input(i) else ""

    def const(self, i: int) -> np.ndarray | None:
        """Input i's value if it is a compile-time constant, else None (also when absent)."""
        return self.constant_value(self.node.input[i]) if self.has_input(i) else None

    def required_const(self, i: int, what: str) -> np.ndarray:
        value = self.const(i)
        if value is None:
            if not self.has_input(i):
                raise self.unsupported(f"{what} (input {i}) is missing")
            raise self.unsupported(f"{what} (input {i}) is computed from the model's inputs; only compile-time "
                                   "constant values are supported there")
        return value

    def input_shape(self, i: int) -> tuple[int, ...]:
        value = self.const(i)
        return tuple(value.shape) if value is not None else self.shape(self.input(i))

    # -- attributes ---------------------------------------------------------------------------------
    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default: Any = REQUIRED) -> Any:
        """Attribute `name` (ints -> tuple, strings decoded, tensors -> arrays); `default` when absent."""
        if name in self._attrs:
            return _attr_value(self._attrs[name])
        if default is REQUIRED:
            raise self.unsupported(f"attribute {name!r} is missing")
        return default

    def ints_operand(self, attr_name: str, input_index: int, since_opset: int, default=None) -> tuple[int, ...] | None:
        """An int list that moved from an attribute to an input at `since_opset` (Squeeze/Unsqueeze/Split
        axes at 13, ReduceMean axes at 18, Pad pads at 11, ...); `default` when absent."""
        if self.opset >= since_opset:
            if not self.has_input(input_index):
                return default
            value = self.required_const(input_index, attr_name)
        else:
            if not self.has_attr(attr_name):
                return default
            value = self.attr(attr_name)
        return tuple(int(v) for v in np.asarray(value).reshape(-1))

    # -- outputs --------------------------------------------------------------------------------------
    def output_used(self, k: int) -> bool:
        return k < len(self.node.output) and self.node.output[k] != "" and self.node.output[k] in self._used

    def unsupported(self, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.target}: {why}{where(self.scope, self.source)}")


def _value_shape(value_info) -> tuple[list, int] | None:
    t = value_info.type
    if not t.HasField("tensor_type"):
        return None
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return None, tt.elem_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return dims, tt.elem_type


def _example_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def from_onnx(model, example_inputs: Sequence | None = None, name: str = "model",
              allow_nonfinite: bool = False) -> Graph:
    """The IR graph of an ONNX model (a path or an onnx.ModelProto)."""
    onnx = _import_onnx()
    proto, label = load_model(model)
    if proto.functions:
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except Exception as exc:
            raise InputError(f"{label}: cannot inline its local functions ({exc})") from None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise InputError(f"{label} does not import the default ONNX opset")
    g = proto.graph
    initializers = {t.name: t for t in g.initializer}
    graph_inputs = [vi for vi in g.input if vi.name not in initializers]

    # -- input shapes: the model's own, or the example inputs' --------------------------------------
    if example_inputs is not None:
        if not isinstance(example_inputs, (list, tuple)):
            example_inputs = (example_inputs,)
        arrays = [_example_array(x) for x in example_inputs]
        if len(arrays) != len(graph_inputs):
            raise InputError(f"{label} takes {len(graph_inputs)} input(s) "
                             f"({', '.join(vi.name for vi in graph_inputs)}), got {len(arrays)} example input(s)")
    else:
        arrays = None
    input_types: list[tuple[str, tuple[int, ...], DType]] = []
    for k, vi in enumerate(graph_inputs):
        found = _value_shape(vi)
        if found is None or found[0] is None:
            dims, elem = None, (found[1] if found else 1)
        else:
            dims, elem = found
        if elem not in _ELEM:
            raise UnsupportedOpError(f"{label}: input '{vi.name}' has ONNX element type {elem}, which is not supported")
        if arrays is not None:
            shape = tuple(int(d) for d in arrays[k].shape)
            if dims is not None and (len(dims) != len(shape) or any(isinstance(d, int) and d > 0 and d != s
                                                                   for d, s in zip(dims, shape))):
                raise InputError(f"{label}: example input {k} has shape {list(shape)}, but input '{vi.name}' "
                                 f"has shape {dims}")
        else:
            if dims is None or any(not (isinstance(d, int) and d > 0) for d in dims):
                raise InputError(
                    f"{label}: input '{vi.name}' has a dynamic shape {dims if dims is not None else '(unknown)'}; "
                    "ModelBlocks compiles static shapes only. What to change: pass example inputs with the "
                    "deployment shape (compile(model, example_inputs)) or export with static shapes")
            shape = tuple(int(d) for d in dims)
        if any(d == 0 for d in shape):
            raise InputError(f"{label}: input '{vi.name}' has an empty dimension {list(shape)}")
        input_types.append((vi.name, shape, _ELEM[elem]))

    # -- shape inference with the fixed input shapes --------------------------------------------------
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    by_name = {vi.name: vi for vi in fixed.graph.input}
    for in_name, shape, _dt in input_types:
        tt = by_name[in_name].type.tensor_type
        tt.shape.Clear()
        for d in shape:
            tt.shape.dim.add().dim_value = d
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=False).graph
        value_shapes = {vi.name: _value_shape(vi) for vi in list(inferred.value_info) + list(inferred.output)}
    except Exception as exc:
        raise InputError(f"{label}: ONNX shape inference failed ({type(exc).__name__}: {exc}). What to change: "
                         "check the model with onnx.checker.check_model, or re-export it") from None

    # -- walk the nodes -----------------------------------------------------------------------------
    graph = Graph(name=name)
    env: dict[str, str] = {}  # ONNX value -> IR tensor name ("" for an output not produced)
    const_env: dict[str, np.ndarray] = {}
    materialized: dict[str, str] = {}
    why_absent: dict[str, str] = {}
    for t_name, t in initializers.items():
        const_env[t_name] = onnx.numpy_helper.to_array(t)
    check_finite(((n, a, True) for n, a in const_env.items()), label, allow_nonfinite)
    for in_name, shape, dtype in input_types:
        ir = graph.unique_name(_symbol(in_name))
        graph.add_tensor(Tensor(ir, shape, dtype))
        graph.inputs.append(ir)
        env[in_name] = ir

    used = {i for n in g.node for i in n.input if i} | {o.name for o in g.output}
    ctx: OnnxContext  # set below

    def materialize(value_name: str) -> str:
        if value_name not in materialized:
            data = np.asarray(const_env[value_name])
            if data.dtype.kind == "f":
                data = data.astype(np.float32)
            elif data.dtype == np.int64 or data.dtype == np.uint64:
                if data.size and (data.min() < -2**31 or data.max() >= 2**31):
                    raise ctx.unsupported(f"constant '{value_name}' holds 64-bit values beyond the int32 range")
                data = data.astype(np.int32)
            materialized[value_name] = graph.add_constant(_symbol(value_name), data).name
        return materialized[value_name]

    def resolve(value) -> str:
        if not isinstance(value, str):
            raise ctx.unsupported(f"expected an ONNX value name, got {type(value).__name__}")
        if value in const_env:
            return materialize(value)
        if value not in env:
            raise GraphError(f"{label}: value '{value}' is used before it is computed (the nodes are not in "
                             "topological order, or a graph input is missing)")
        ir = env[value]
        if ir == "":
            raise ctx.unsupported(why_absent.get(value, f"value '{value}' is not supported"))
        return ir

    def constant_of(value):
        return const_env.get(value) if isinstance(value, str) else None

    ctx = OnnxContext(graph, resolve, constant_of, opset, label, used)
    ctx.value_types = {**{vi.name: _value_shape(vi) for vi in graph_inputs}, **value_shapes}
    qdq_weights: dict = {}  # folded DequantizeLinear of an int8 constant -> (float values, its scales)
    shifted_uint8: set[str] = set()  # uint8 QuantizeLinear results, held as int8 q - 128
    stale: set[str] = set()  # values whose shape ONNX's inference gets wrong (see _inference_is_stale)

    for node in g.node:
        ctx.at_node(node)
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"unsupported op {node.domain}.{node.op_type} (node '{node.name}') in {label}: "
                                     f"only the default ONNX domain is supported")
        present = [i for i in node.input if i]
        if node.op_type == "Constant":
            const_env[node.output[0]] = _constant_node_value(ctx, node)
            continue
        if node.op_type in ("Shape", "Size") and present and present[0] not in const_env:
            shape = np.array(ctx.shape(resolve(present[0])), dtype=np.int64)
            if node.op_type == "Size":
                const_env[node.output[0]] = np.array(int(np.prod(shape)), dtype=np.int64)
            else:
                rank = len(shape)
                start, end = int(ctx.attr("start", 0)), ctx.attr("end", None)
                end = rank if end is None else int(end)
                start, end = (start + rank if start < 0 else start), (end + rank if end < 0 else end)
                const_env[node.output[0]] = shape[max(0, min(start, rank)):max(0, min(end, rank))]
            continue
        if node.op_type in _RANDOM:
            raise UnsupportedOpError(f"random op {node.op_type} (node '{node.name}') in {label}: compiled C is "
                                     "deterministic. What to change: pass random values as model inputs")
        if all(i in const_env for i in present):
            if node.op_type in onnx_qdq.QDQ_OPS:
                scales = onnx_qdq.fold_constant(ctx, node, const_env)
                if scales is not None:
                    qdq_weights[node.output[0]] = (np.asarray(const_env[node.output[0]], dtype=np.float32), scales)
            else:
                _fold(ctx, node, const_env, opset, label)
            continue
        onnx_qdq.track_shifted_uint8(ctx, node, shifted_uint8, label)
        converter = onnx_converter(node.op_type)
        if converter is None:
            module = f", module '{ctx.scope}'" if ctx.scope else ""
            raise UnsupportedOpError(
                f"unsupported ONNX op {node.op_type} (node '{node.name}'{module}) in {label}.\n"
                f"Supported ONNX ops: {', '.join(supported_onnx())}")
        result = call_converter(converter, ctx, node, ctx.target, ctx.scope)
        results = result if isinstance(result, (tuple, list)) else (result,)
        untrusted = _inference_is_stale(ctx, node) or any(i in stale for i in present)
        for k, out in enumerate(node.output):
            if not out:
                continue
            ir = results[k] if k < len(results) else ""
            env[out] = ir
            if ir == "":
                why_absent[out] = (f"output {k} of ONNX {node.op_type} node '{node.name}' (e.g. pooling indices, "
                                   "normalisation statistics or a dropout mask) is not supported; only the main "
                                   "result is")
            elif untrusted:
                stale.add(out)
            else:
                _check_shape(ctx, out, ir, value_shapes)

    for vi in g.output:
        if vi.name in const_env:
            ir = ctx.emit1("identity", [materialize(vi.name)], hint="output")
        else:
            ir = resolve(vi.name)
            if ir in graph.inputs or ir in graph.outputs:
                ir = ctx.emit1("identity", [ir], hint="output")
        graph.outputs.append(ir)
    # QDQ models: their scales kept on the float tensors
    onnx_qdq.keep_model_params(graph, qdq_weights, [(vi.name, vi.type.tensor_type.elem_type) for vi in g.output],
                               label)
    _fold_linear_bias(graph)
    graph.remove_unused_tensors()
    from .torch_export import _name_outputs  # noqa: PLC0415

    _name_outputs(graph)
    verify(graph, after="capture")
    return graph


def _constant_node_value(ctx: OnnxContext, node) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if ctx.has_attr(key):
            v = ctx.attr(key)
            if key.startswith("value_float"):
                return np.array(v, dtype=np.float32)
            if key.startswith("value_int"):
                return np.array(v, dtype=np.int64)
            return np.asarray(v)
    raise ctx.unsupported("Constant with a sparse or string value is not supported")


def _fold(ctx: OnnxContext, node, const_env: dict, opset: int, label: str) -> None:
    """Evaluate a node whose inputs are all constants with onnx's reference implementation."""
    import onnx  # noqa: PLC0415
    from onnx import TypeProto, helper  # noqa: PLC0415
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415

    if node.op_type == "Identity":
        const_env[node.output[0]] = const_env[node.input[0]]
        return
    present = [i for i in node.input if i]
    outs = [o for o in node.output if o]
    sub = helper.make_graph([node], "fold", [helper.make_value_info(i, TypeProto()) for i in dict.fromkeys(present)],
                            [helper.make_value_info(o, TypeProto()) for o in outs])
    model = helper.make_model(sub, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = onnx.IR_VERSION
    try:
        values = ReferenceEvaluator(model).run(None, {i: const_env[i] for i in present})
    except Exception as exc:
        raise UnsupportedOpError(f"{ctx.target}: cannot evaluate this constant computation at compile time "
                                 f"({type(exc).__name__}: {exc}){where(ctx.scope)}") from None
    for o, v in zip(outs, values):
        const_env[o] = np.asarray(v)


def _inference_is_stale(ctx: OnnxContext, node) -> bool:
    """True where onnx.shape_inference is known to disagree with onnxruntime (and PyTorch, and the ONNX
    reference evaluator), so its shapes there and downstream cannot judge the converters: pooling with
    ceil_mode=1 drops a last window that would start in the right padding, which the inference rule of
    MaxPool / AveragePool / LpPool before opset 22 does not (e.g. length 2, kernel 1, stride 2 -> 1, not 2),
    and the TorchScript exporter writes such pools at opset 17."""
    return node.op_type in ("MaxPool", "AveragePool", "LpPool") and bool(ctx.attr("ceil_mode", 0))


def _check_shape(ctx: OnnxContext, value: str, ir: str, value_shapes: dict) -> None:
    """The op's shape rule must agree with ONNX shape inference: catch converter bugs early."""
    found = value_shapes.get(value)
    if not found or found[0] is None:
        return
    dims = found[0]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        return
    got = ctx.graph.tensors[ir].shape
    if tuple(dims) != got:
        raise GraphError(f"converter for {ctx.target}{where(ctx.scope)} produced shape {list(got)}, ONNX shape "
                         f"inference says {dims} (ModelBlocks bug)")


def _fold_linear_bias(graph: Graph) -> None:
    """MatMul + Add(constant [N]) -> one linear with a bias, as nn.Linear exports (beyond 2-D inputs)
    and as the torch frontend builds it."""
    consumers = graph.consumers()
    producers = graph.producers()
    drop = set()
    for node in list(graph.nodes):
        if node.op != "add" or node.name in drop:
            continue
        for k in (0, 1):
            lin, bias = producers.get(node.inputs[k]), graph.tensors[node.inputs[1 - k]]
            if lin is None or lin.op != "linear" or lin.inputs[2] or not bias.is_constant:
                continue
            n = graph.tensors[lin.inputs[1]].shape[0]
            if (len(consumers.get(lin.outputs[0], [])) != 1 or lin.outputs[0] in graph.outputs
                    or bias.dtype != DType.float32 or bias.numel != n or any(d != 1 for d in bias.shape[:-1])
                    or (bias.shape and bias.shape[-1] != n)
                    or graph.tensors[node.outputs[0]].shape != graph.tensors[lin.outputs[0]].shape
                    or node.attrs.get("act_min") is not None or node.attrs.get("act_max") is not None):
                continue
            b = graph.add_constant(f"{bias.name}_bias", bias.data.reshape(n))
            fused = lin.replace(inputs=(lin.inputs[0], lin.inputs[1], b.name), outputs=node.outputs)
            graph.nodes[graph.nodes.index(lin)] = fused
            graph.nodes.remove(node)
            drop.add(node.name)
            break
