"""Int8 rewrite: every node whose op has an int8 lowering rule (quant/lowering.py, registered by the
op files) and that the user did not keep in float becomes int8; the others stay float32, and
`quantize` / `dequantize` nodes are inserted wherever the two meet. Graph inputs and outputs stay
float32, so a quantized model is called like the float one.

A QDQ model's float tensors carry their own parameters (`Tensor.quant`, frontend/onnx_qdq.py), which win
over calibrated ones. Where a rule gives an output other parameters than the model's (data movement and
max pool keep their input's; sigmoid its fixed 1/256), a `q_requantize` to the model's follows, as
onnxruntime requantizes there too.

Not part of PIPELINE: it needs calibrated parameters, so `api.compile(quantize="int8")` runs it
after the float pipeline and calibration, then runs `dead_code` and `schedule` again.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import CompileError, InputError, ModelBlocksError, where
from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, QuantParams
from ..quant.lowering import QuantContext, rule_for


@dataclass
class QuantizedGraph:
    graph: Graph
    int8_of: dict[str, str]  # float tensor of the float graph -> its int8 tensor in `graph`
    float_nodes: dict[str, str] = field(default_factory=dict)  # float graph node -> why it stayed float32
    missing: set[str] = field(default_factory=set)  # run without calibration: activations that had no parameters


def scope_matches(scope: str, pattern: str) -> bool:
    """fnmatch on the module path; a pattern also covers everything below it ('blocks.0' covers
    'blocks.0.attn.qkv')."""
    return fnmatch.fnmatchcase(scope, pattern) or any(
        fnmatch.fnmatchcase(scope[:k], pattern) for k in range(len(scope)) if scope[k] == ".")


def check_keep_float(graph: Graph, keep_float: Sequence[str]) -> None:
    scopes = sorted({n.scope for n in graph.nodes if n.scope})
    for pattern in keep_float:
        if not any(scope_matches(s, pattern) for s in scopes):
            raise InputError(f"--keep-float pattern {pattern!r} matches no layer; the model's module paths are: "
                             f"{', '.join(scopes[:30])}{' ...' if len(scopes) > 30 else ''}")


def run(graph: Graph, params: dict[str, QuantParams] | None, keep_float: Sequence[str] = ()) -> QuantizedGraph:
    """`params`: calibrated parameters; None when there are none (a QDQ model compiled without calibration
    data): activations without parameters of their own are then listed in `missing`."""
    check_keep_float(graph, keep_float)
    new = Graph(graph.name)
    for name in graph.inputs:
        new.add_tensor(graph.tensors[name])
        new.inputs.append(name)
    q = QuantContext(graph, dict(params or {}), new, set() if params is None else None)
    q.float_of = {name: name for name in graph.inputs}
    float_nodes: dict[str, str] = {}
    for node in graph.nodes:
        reason = _lower(q, node, keep_float)
        if reason:
            float_nodes[node.name] = reason
            _keep_float(q, node)
    q.node = None
    new.outputs = [q.float_in_graph(o) for o in graph.outputs]
    return QuantizedGraph(new, dict(q.int8_of), float_nodes, q.missing or set())


def _lower(q: QuantContext, node: Node, keep_float: Sequence[str]) -> str:
    """Lower `node` to int8; returns '' on success, else why it stays float."""
    if any(scope_matches(node.scope, p) for p in keep_float):
        return "kept float by --keep-float"
    rule = rule_for(node.op)
    if rule is None:
        return f"no int8 kernel for {node.op}"
    tensors = [q.float_tensor(n) for n in (*node.inputs, *node.outputs) if n]
    if any(t.dtype != DType.float32 for t in tensors):
        return "has non-float32 inputs or outputs"
    if any(n and not q.is_constant(n) and n not in q.int8_of and n not in q.float_of for n in node.inputs):
        raise CompileError(f"node {node.name}{where(node.scope, node.source, node.op)} reads a tensor that no earlier "
                           "node produced (ModelBlocks bug)")
    saved = (len(q.graph.nodes), set(q.graph.tensors), dict(q.int8_of), dict(q.float_of), set(q._used_nodes),
             None if q.missing is None else set(q.missing))
    q.node = node
    why = "its int8 rule declined these shapes or attributes"
    try:
        lowered = rule(q, node)
        if lowered:
            _requantize_to_model_params(q, node)
    except ModelBlocksError:
        raise
    except ValueError as exc:  # a rule's way to say "not in int8" after it started building
        lowered, why = False, str(exc)
    except Exception as exc:
        raise CompileError(f"int8 lowering failed for node {node.name}{where(node.scope, node.source, node.op)}: "
                           f"{type(exc).__name__}: {exc} (ModelBlocks bug)") from exc
    if not lowered:  # roll back whatever the rule built before it declined
        count, names, q.int8_of, q.float_of, q._used_nodes, q.missing = saved
        del q.graph.nodes[count:]
        for name in set(q.graph.tensors) - names:
            del q.graph.tensors[name]
        return why
    missing = [o for o in node.outputs if o not in q.int8_of]
    if missing:
        raise CompileError(f"the int8 rule of {node.op} did not produce {missing} for node {node.name} (ModelBlocks bug)")
    return ""


def _keep_float(q: QuantContext, node: Node) -> None:
    q.node = node
    inputs = []
    for name in node.inputs:
        if not name:
            inputs.append("")
            continue
        t = q.float_tensor(name)
        if t.is_constant and name not in q.float_of:
            q.graph.add_tensor(t)
            q.float_of[name] = name
        inputs.append(q.float_in_graph(name))
    for name in node.outputs:
        q.graph.add_tensor(q.float_tensor(name))
        q.float_of[name] = name
    q._used_nodes.add(node.name)
    q.graph.nodes.append(node.replace(inputs=tuple(inputs)))


def _requantize_to_model_params(q: QuantContext, node: Node) -> None:
    """Outputs whose QDQ parameters differ from the ones the rule chose get a q_requantize to them."""
    from ..ops.q_elementwise import requantize_to  # noqa: PLC0415

    for name in node.outputs:
        t = q.float_tensor(name)
        model = t.quant
        if model is None or t.dtype != DType.float32 or model.axis is not None or len(model.scale) != 1:
            continue
        if q.graph.tensors[q.int8_of[name]].quant != model:
            q.int8_of[name] = requantize_to(q, q.int8_of[name], model, name)
