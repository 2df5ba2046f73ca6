"""Pruning whole attention heads of hand-written multi-head attention.

The heads are found on the IR. A Linear (a fused qkv, or separate q/k/v projections) whose output
is reshaped from [..., C] to [..., (S,) H, dh] starts a walk that follows the head axis. The walk
passes through permute, select/slice on other axes, batched matmul, scaled_dot_product_attention,
softmax and elementwise ops. It must end at a reshape that merges (H, dh) back into H*dh, read by
one Linear (the output projection). Along the way every matmul / attention input must carry the
head axis at the same place. Anything else means the heads mix, and the attention is left alone
with the reason.

Removing head h drops rows s*H*dh + h*dh .. + dh of every projection (each segment s of a fused
qkv) and the matching dh input columns of the output projection. Heads never mix, so this is
exactly the original model with those columns of the output projection set to zero; `prune_heads`
checks that on the example input. The model code must take its head count from an attribute
(`heads`, `num_heads`, ...) that is set to the new count, and must shape its tensors from it
(e.g. `reshape(b, n, self.heads * self.head_dim)`, not `reshape(b, n, c)` with c the model width);
otherwise the model can no longer be captured and the error says so. With `data`, the heads whose
outputs carry least (spread times output-projection weight norm) go first, and their mean output is
folded into the projection's bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import InputError
from ..ir.graph import Graph
from ..ops.registry import Prop, get_op
from ..passes.quantize import scope_matches
from .modules import Compression, LayerChange, copy_model, count_params, get_module, keep_count, set_module, top
from .structured import capture, consumer_inputs

HEAD_ATTRIBUTES = ("heads", "num_heads", "n_heads", "n_head", "nhead", "num_attention_heads")
_PASS_THROUGH = {"softmax", "log_softmax"}


@dataclass
class HeadGroup:
    """The heads of one attention: its projections (producers), output projection, and shape."""

    module: str  # the attention module (scope of the head-splitting reshape)
    producers: list[str]
    consumer: str
    heads: int
    head_dim: int
    segments: dict[str, int] = field(default_factory=dict)  # producer -> S (3 for a fused qkv)


def head_groups(model: nn.Module, example_inputs, graph: Graph | None = None) -> tuple[list[HeadGroup], dict[str, str]]:
    """The attentions whose heads can be pruned, and for the others (by producer path) why not."""
    graph = graph or capture(model, example_inputs)
    modules = dict(model.named_modules())
    consumers = graph.consumers()
    walks, refused = {}, {}
    for node in graph.nodes:
        if node.op != "linear" or not isinstance(modules.get(node.scope), nn.Linear):
            continue
        outs = consumers.get(node.outputs[0], [])
        if len(outs) != 1 or outs[0].op != "reshape":
            continue
        walk = _walk(graph, consumers, modules, node.outputs[0], outs[0])
        if isinstance(walk, str):
            if walk:
                refused[node.scope] = walk
        else:
            walks[node.scope] = walk
    groups: dict[str, HeadGroup] = {}
    all_states: dict[str, dict] = {}
    all_mixers: dict[str, dict] = {}
    for producer, (module, consumer, heads, head_dim, segments, states, mixers) in walks.items():
        group = groups.setdefault(consumer, HeadGroup(module, [], consumer, heads, head_dim))
        if (group.heads, group.head_dim, group.module) != (heads, head_dim, module):
            refused[producer] = f"its heads ({heads} x {head_dim}) differ from the others read by {consumer}"
            continue
        group.producers.append(producer)
        group.segments[producer] = segments
        all_states.setdefault(consumer, {}).update(states)
        all_mixers.setdefault(consumer, {}).update({n.name: n for n in mixers})
    found = []
    for consumer, group in groups.items():
        states = all_states[consumer]
        bad = [n for n in all_mixers[consumer].values() if not _consistent(graph, n, states)]
        if bad:
            for p in group.producers:
                refused[p] = f"{bad[0].op} at {bad[0].scope} reads a tensor without the heads"
            continue
        found.append(group)
    return found, refused


def _walk(graph: Graph, consumers, modules, name: str, split):
    """Follow the head axis from a projection's output; '' if it is not split into heads at all,
    a reason string if the heads mix, else (module, consumer, H, dh, S, states, mixing nodes)."""
    x_shape = graph.tensors[name].shape
    y_shape = graph.tensors[split.outputs[0]].shape
    lead = len(x_shape) - 1
    tail = y_shape[lead:]
    if y_shape[:lead] != x_shape[:lead] or len(tail) not in (2, 3) or int(np.prod(tail)) != x_shape[-1]:
        return ""
    heads, head_dim = tail[-2], tail[-1]
    segments = tail[0] if len(tail) == 3 else 1
    if heads < 2:
        return ""
    states = {split.outputs[0]: lead + len(tail) - 2}  # tensor -> its head axis
    mixers, ends = [], []
    todo = [split.outputs[0]]
    while todo:
        t = todo.pop()
        axis = states[t]
        shape = graph.tensors[t].shape
        if t in graph.outputs:
            return "its heads are a model output"
        for node in consumers.get(t, []):
            out = node.outputs[0]
            op = get_op(node.op)
            new = axis
            if node.op == "permute":
                new = list(node.attrs["perm"]).index(axis)
            elif node.op in ("select", "slice"):
                dim = node.attrs["dim"] % len(shape)
                if dim == axis:
                    return f"{node.op} at {node.scope} cuts across the heads"
                if node.op == "select" and dim < axis:
                    new = axis - 1
            elif node.op in ("matmul", "attention"):
                from_end = len(shape) - axis
                if from_end < 3:
                    return f"{node.op} at {node.scope} contracts over the heads"
                new = len(graph.tensors[out].shape) - from_end
                mixers.append(node)
            elif node.op in _PASS_THROUGH:
                if node.attrs["dim"] % len(shape) == axis:
                    return f"{node.op} at {node.scope} runs across the heads"
            elif node.op == "reshape":
                out_shape = graph.tensors[out].shape
                if axis == len(shape) - 2 and shape[-1] == head_dim and out_shape[:axis] == shape[:axis] \
                        and out_shape[axis:] == (heads * head_dim,):
                    readers = consumers.get(out, [])
                    if len(readers) != 1 or readers[0].op != "linear" or readers[0].inputs[0] != out \
                            or not isinstance(modules.get(readers[0].scope), nn.Linear):
                        return f"the merged heads at {node.scope} are not read by one Linear"
                    ends.append(readers[0].scope)
                    continue
                return f"reshape at {node.scope} moves the heads"
            elif op.has(Prop.ELEMENTWISE) or op.has(Prop.IDENTITY):
                others = [graph.tensors[i] for i in node.inputs if i and i != t]
                if any(o.is_constant and len(o.shape) >= len(shape) - axis and o.shape[axis - len(shape)] > 1
                       for o in others):
                    return f"{node.op} at {node.scope} scales the heads differently"
                if any(not o.is_constant for o in others):
                    mixers.append(node)
            else:
                return f"{node.op} at {node.scope} mixes the heads"
            if out in states and states[out] != new:
                return f"{node.op} at {node.scope} meets the heads on another axis"
            if out not in states:
                states[out] = new
                todo.append(out)
    if len(set(ends)) != 1:
        return "its heads reach no single output projection" if not ends else "its heads reach several projections"
    return (split.scope, ends[0], heads, head_dim, segments, states, mixers)


def _consistent(graph: Graph, node, states) -> bool:
    """Every non-constant input of a node that joins tensors carries the heads at the same place."""
    placed = []
    for i in node.inputs:
        if not i or graph.tensors[i].is_constant:
            continue
        if i not in states:
            return False
        placed.append(len(graph.tensors[i].shape) - states[i])
    return len(set(placed)) == 1


def _rows(group: HeadGroup, producer: str, keep: np.ndarray) -> np.ndarray:
    h, dh = group.heads, group.head_dim
    return np.array([s * h * dh + k * dh + i for s in range(group.segments[producer]) for k in keep for i in range(dh)],
                    dtype=np.int64)


def _cols(group: HeadGroup, keep: np.ndarray) -> np.ndarray:
    return np.array([k * group.head_dim + i for k in keep for i in range(group.head_dim)], dtype=np.int64)


def _head_attribute(model: nn.Module, group: HeadGroup) -> str:
    module = get_module(model, group.module)
    named = [a for a in HEAD_ATTRIBUTES if getattr(module, a, None) == group.heads]
    if len(named) == 1:
        return named[0]
    ints = [a for a, v in vars(module).items() if isinstance(v, int) and not isinstance(v, bool) and v == group.heads]
    if len(ints) == 1:
        return ints[0]
    raise InputError(f"cannot prune the heads of {group.module} ({type(module).__name__}): its head count "
                     f"{group.heads} must be kept in one int attribute (e.g. `self.heads`), found "
                     f"{', '.join(named or ints) or 'none'}")


def _linear_rows(layer: nn.Linear, rows: np.ndarray) -> nn.Linear:
    new = nn.Linear(layer.in_features, len(rows), bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(layer.weight[torch.from_numpy(rows)])
        if layer.bias is not None:
            new.bias.copy_(layer.bias[torch.from_numpy(rows)])
    return new.to(layer.weight.dtype).eval()


def _linear_cols(layer: nn.Linear, cols: np.ndarray) -> nn.Linear:
    new = nn.Linear(len(cols), layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(layer.weight[:, torch.from_numpy(cols)])
        if layer.bias is not None:
            new.bias.copy_(layer.bias)
    return new.to(layer.weight.dtype).eval()


def prune_heads(model: nn.Module, example_inputs, *, amount: float | None = None, keep: Mapping[str, int] | None = None,
                layers: Sequence[str] | None = None, data=None) -> Compression:
    """A copy of `model` without a fraction `amount` of the heads of every prunable attention that
    `layers` (globs on the attention module's path) selects, or keeping `keep` ({glob: heads})."""
    if (amount is None) == (keep is None):
        raise InputError("prune_heads needs exactly one of amount= or keep=")
    if amount is not None and not 0.0 <= amount < 1.0:
        raise InputError(f"amount must be a fraction in [0, 1), got {amount}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    student = copy_model(model)
    groups, refused = head_groups(student, example_inputs)
    patterns = list(keep) if keep is not None else list(layers or [])
    for g in patterns:
        if not any(scope_matches(grp.module, g) for grp in groups):
            why = "; ".join(f"{p}: {r}" for p, r in refused.items()) or "the model has no multi-head attention"
            raise InputError(f"pattern {g!r} matches no attention whose heads can be pruned ({why})")
    stats = consumer_inputs(student, [g.consumer for g in groups], data) if data is not None else None
    changes = [LayerChange(p, "kept", "Linear", "unchanged", 0, 0, r) for p, r in refused.items()]
    for group in groups:
        target = keep_count(group.module, group.heads, amount, keep, layers, "heads")
        if target is None or target == group.heads:
            continue
        attribute = _head_attribute(student, group)
        kept = top(_scores(student, group, stats), target)
        before = sum(count_params(get_module(student, p)) for p in [*group.producers, group.consumer])
        reference = _masked_reference(student, group, kept, example_inputs)
        for p in group.producers:
            set_module(student, p, _linear_rows(get_module(student, p), _rows(group, p, kept)))
        consumer = get_module(student, group.consumer)
        set_module(student, group.consumer, _linear_cols(consumer, _cols(group, kept)))
        setattr(get_module(student, group.module), attribute, target)
        _check(student, group, reference, example_inputs)
        if stats is not None:
            _fold_mean(student, group, consumer, kept, stats[group.consumer].mean(axis=0))
        after = sum(count_params(get_module(student, p)) for p in [*group.producers, group.consumer])
        changes.append(LayerChange(group.module, "heads", f"{group.heads} heads x {group.head_dim}",
                                   f"{target} heads (kept {', '.join(map(str, kept))})", before, after,
                                   f"{', '.join(group.producers)} -> {group.consumer}; `{attribute}` = {target}"))
    return Compression(student, changes, original=model)


def _scores(model: nn.Module, group: HeadGroup, stats) -> np.ndarray:
    w = get_module(model, group.consumer).weight.detach().double().numpy()
    col2 = (w ** 2).sum(axis=0).reshape(group.heads, group.head_dim)
    if stats is not None:
        var = stats[group.consumer].var(axis=0).reshape(group.heads, group.head_dim)
        return (var * col2).sum(axis=1)
    rows = np.zeros(group.heads)
    for p in group.producers:
        pw = get_module(model, p).weight.detach().double().numpy()
        per_head = (pw ** 2).sum(axis=1).reshape(group.segments[p], group.heads, group.head_dim)
        rows += per_head.sum(axis=(0, 2))
    return col2.sum(axis=1) * rows


def _masked_reference(model: nn.Module, group: HeadGroup, kept: np.ndarray, example_inputs) -> torch.Tensor:
    """The model's outputs with the removed heads' columns of the output projection zeroed:
    what the pruned model must compute."""
    consumer = get_module(model, group.consumer)
    saved = consumer.weight.detach().clone()
    gone = np.setdiff1d(np.arange(group.heads), kept)
    try:
        with torch.no_grad():
            consumer.weight[:, torch.from_numpy(_cols(group, gone))] = 0.0
            return _flat(model(*example_inputs))
    finally:
        with torch.no_grad():
            consumer.weight.copy_(saved)


def _flat(out) -> torch.Tensor:
    leaves = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    return torch.cat([t.detach().double().reshape(-1) for t in leaves])


def _check(model: nn.Module, group: HeadGroup, reference: torch.Tensor, example_inputs) -> None:
    try:
        with torch.no_grad():
            got = _flat(model(*example_inputs))
        capture(model, example_inputs)
    except Exception as exc:  # noqa: BLE001 (the user's forward failed: say where and how to fix it)
        raise InputError(f"after pruning the heads of {group.module}, the model no longer runs: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Its forward must "
                         "shape tensors from the head-count attribute (e.g. reshape(b, n, self.heads * self.head_dim))"
                         ) from None
    err = float(torch.linalg.norm(got - reference) / max(float(torch.linalg.norm(reference)), 1e-30))
    if got.shape != reference.shape or not err < 1e-5:
        raise InputError(f"pruning the heads of {group.module} changed the outputs beyond the removed heads "
                         f"(relative L2 {err:.2e}): the model's attention does not keep its heads apart as the IR "
                         "suggested; it is left unpruned")


def _fold_mean(model, group: HeadGroup, original_consumer: nn.Linear, kept: np.ndarray, mean: np.ndarray) -> None:
    gone = _cols(group, np.setdiff1d(np.arange(group.heads), kept))
    w = original_consumer.weight.detach().double().numpy()
    new = get_module(model, group.consumer)
    extra = torch.from_numpy(w[:, gone] @ mean[gone]).to(new.weight.dtype)
    with torch.no_grad():
        if new.bias is None:
            new.bias = nn.Parameter(extra.clone())
        else:
            new.bias.add_(extra)
