"""Structured pruning: remove whole output neurons of a Linear or output channels of a conv, and
the matching inputs of the layers that read them, so layers really shrink (fewer MACs, weights and
activation bytes).

Which layers read a layer's channels is found on the IR: the model is captured once, and from
each Linear/conv node the channel axis is followed through ops that keep channels apart
(elementwise activations, BatchNorm, PReLU, pooling, and the flatten that lays channel c out as a
block of positions) until it reaches the Linear or conv layers that consume it. If the channels
reach anything that mixes them (LayerNorm, softmax, a residual add, concat, a model output, ...),
the layer is not prunable and the result says why. The surgery itself is done on the nn.Module
(the IR nodes carry the module paths), so the pruned model is still an ordinary PyTorch model.

Which channels go: with data, those whose removal loses least at the consumers: for channel j
the spread (standard deviation over the data) of its values times the norm of the consumer
weights that read it; its mean is not lost, because it is folded into the consumer's bias.
Without data, the product of the channel's weight norm and its consumer weights' norm.
With data and `refit=True`, a Linear consumer is re-fitted by least squares to reproduce its
original output from the kept channels: the data-aware way to get the new weights from the old.

`refactor_pair(first, second, width)` is the project plan's case of two consecutive Linear layers:
through a purely linear path the pair is one matrix W2 W1, refactored by truncated SVD through a
narrower width (exact at full rank); with an activation in between, the hidden width is narrowed
by this pruning with a least-squares refit.
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
from .modules import (Compression, LayerChange, copy_model, count_params, describe, get_module, keep_count,
                      run_with_input_hooks, set_module, top)

PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_POOLS = {"max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool"}
MAX_SAMPLES = 4096  # activation rows kept per consumer for scores and least-squares refits


@dataclass
class ChannelGroup:
    """The output channels of one Linear/conv (`producer`) and every module that reads them."""

    producer: str
    channels: int
    followers: list[str] = field(default_factory=list)  # per-channel modules on the way: BatchNorm, PReLU
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (module path, positions per channel)
    path_ops: list[str] = field(default_factory=list)  # ops between producer and consumers
    reason: str = ""  # why the group cannot be pruned ("" when it can)

    @property
    def prunable(self) -> bool:
        return not self.reason


def capture(model: nn.Module, example_inputs) -> Graph:
    from ..frontend.torch_export import export_model, from_exported_program  # noqa: PLC0415
    from ..passes import run_passes  # noqa: PLC0415

    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    return run_passes(from_exported_program(export_model(model, tuple(example_inputs))), ("remove_identity",))


def channel_groups(model: nn.Module, example_inputs, graph: Graph | None = None) -> dict[str, ChannelGroup]:
    """For every Linear and conv (groups=1) of `model`: its channel group, prunable or not."""
    graph = graph or capture(model, example_inputs)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        calls[node.scope] = calls.get(node.scope, 0) + 1
    consumers = graph.consumers()
    groups = {}
    for node in graph.nodes:
        module = modules.get(node.scope)
        if node.op not in ("linear", "conv") or not isinstance(module, PRODUCERS):
            continue
        weight = graph.tensors[node.inputs[1]]
        if tuple(weight.shape) != tuple(module.weight.shape):
            continue
        group = ChannelGroup(node.scope, weight.shape[0])
        if node.scope in groups or calls[node.scope] > 1:
            group.reason = "the module is called more than once"
        elif node.op == "conv" and node.attrs["groups"] != 1:
            group.reason = f"grouped conv (groups={node.attrs['groups']})"
        else:
            out = graph.tensors[node.outputs[0]]
            axis = len(out.shape) - 1 if node.op == "linear" else 1
            group.reason = _follow(graph, consumers, modules, calls, node.outputs[0], axis, 1, group)
        groups[node.scope] = group
    return groups


def _follow(graph, consumers, modules, calls, name: str, axis: int, block: int, group: ChannelGroup) -> str:
    """Walk the channels of tensor `name` (on `axis`, `block` positions per channel) to their
    consumers, filling `group`; returns why they cannot be pruned, or ''."""
    if name in graph.outputs:
        return "its channels are a model output"
    shape = graph.tensors[name].shape
    for node in consumers.get(name, []):
        where = f"{node.op} at {node.scope or '(top level)'}"
        op = get_op(node.op)
        if node.op in ("linear", "conv") and node.inputs[0] == name:
            module = modules.get(node.scope)
            ok_axis = axis == len(shape) - 1 if node.op == "linear" else (axis == 1 and block == 1)
            if not isinstance(module, PRODUCERS) or not ok_axis or calls[node.scope] > 1:
                return f"its channels reach {where}, which cannot drop inputs"
            if node.op == "conv" and node.attrs["groups"] != 1:
                return f"its channels reach a grouped conv at {node.scope}"
            width = module.in_features if isinstance(module, nn.Linear) else module.in_channels
            if width != group.channels * block:
                return f"its channels reach {where} in a layout ModelBlocks does not follow"
            group.consumers.append((node.scope, block))
            continue
        group.path_ops.append(node.op)
        if node.op == "batch_norm" or (node.op == "prelu" and graph.tensors[node.inputs[1]].numel > 1):
            if axis != 1 or block != 1 or not isinstance(modules.get(node.scope), (nn.modules.batchnorm._BatchNorm,
                                                                                 nn.PReLU)):
                return f"its channels reach {where} on another axis"
            group.followers.append(node.scope)
        elif node.op in _POOLS:
            if axis != 1 or block != 1:
                return f"its channels reach {where} on another axis"
        elif node.op == "reshape":
            out_shape = graph.tensors[node.outputs[0]].shape
            if axis == len(shape) - 1 and len(out_shape) >= 1 and out_shape[-1] == shape[-1]:
                axis = len(out_shape) - 1  # leading dims regrouped, channels untouched
            elif out_shape[:axis] == shape[:axis] and len(out_shape) == axis + 1:
                block *= int(np.prod(shape[axis + 1:], dtype=np.int64))  # flatten: channel c -> a block
            else:
                return f"its channels are split or moved by {where}"
        elif op.has(Prop.ELEMENTWISE) or op.has(Prop.CLAMP_ACTIVATION):
            others = [graph.tensors[i] for i in node.inputs[1:] if i]
            if node.inputs[0] != name or any(not t.is_constant or _spans_axis(t.shape, shape, axis) for t in others):
                return f"its channels meet another tensor in {where}"
        else:
            return f"its channels reach {where}, which mixes channels"
        reason = _follow(graph, consumers, modules, calls, node.outputs[0], axis, block, group)
        if reason:
            return reason
    if not group.consumers:
        return "no Linear or conv reads its channels"
    return ""


def _spans_axis(const_shape, shape, axis: int) -> bool:
    """Whether a broadcast constant has more than one value along the channel axis."""
    k = axis - (len(shape) - len(const_shape))
    return 0 <= k < len(const_shape) and const_shape[k] > 1


# -- scores and statistics ----------------------------------------------------------------------------

def consumer_inputs(model: nn.Module, paths: Sequence[str], data) -> dict[str, np.ndarray]:
    """The inputs each module in `paths` sees on `data`, as float64 rows [samples, features]
    (convs: [samples * positions, channels]), at most MAX_SAMPLES rows, taken evenly."""
    seen: dict[str, list[np.ndarray]] = {p: [] for p in paths}

    def record(path, module, x):
        x = x.to(torch.float64)
        conv = isinstance(module, nn.modules.conv._ConvNd)
        seen[path].append((x.movedim(1, -1).reshape(-1, x.shape[1]) if conv else x.reshape(-1, x.shape[-1])).numpy())
    run_with_input_hooks(model, paths, data, record)
    out = {}
    for p, rows in seen.items():
        x = np.concatenate(rows) if rows else np.zeros((0, 0))
        if len(x) > MAX_SAMPLES:
            x = x[np.linspace(0, len(x) - 1, MAX_SAMPLES).round().astype(np.int64)]
        out[p] = x
    return out


def _columns(keep: np.ndarray, block: int) -> np.ndarray:
    """Input columns of a flattened consumer for channels `keep` (channel c = columns c*block..)."""
    return (keep[:, None] * block + np.arange(block)[None, :]).reshape(-1)


def _consumer_weight(module: nn.Module) -> np.ndarray:
    """Consumer weight as [out, in] (a conv's [out, in, k...] summed into [out*k..., in])."""
    w = module.weight.detach().to(torch.float64).numpy()
    return w if w.ndim == 2 else np.moveaxis(w, 1, -1).reshape(-1, w.shape[1])


def channel_scores(model: nn.Module, group: ChannelGroup, stats: dict[str, np.ndarray] | None) -> np.ndarray:
    """How much each channel of `group` matters (higher keeps it); see the module docstring."""
    total = np.zeros(group.channels)
    for path, block in group.consumers:
        w = _consumer_weight(get_module(model, path))
        col_norm2 = (w ** 2).sum(axis=0).reshape(group.channels, block)
        if stats is not None and path in stats and len(stats[path]):
            var = stats[path].var(axis=0).reshape(group.channels, block)
            total += (var * col_norm2).sum(axis=1)
        else:
            total += col_norm2.sum(axis=1)
    if stats is None:
        producer = get_module(model, group.producer).weight.detach().to(torch.float64)
        row = (producer.reshape(group.channels, -1) ** 2).sum(axis=1).numpy()
        for f in group.followers:
            module = get_module(model, f)
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                gain = module.weight.detach().double() / torch.sqrt(module.running_var.double() + module.eps)
                row = row * (gain ** 2).numpy()
        total = total * row
    return np.sqrt(total)


# -- surgery --------------------------------------------------------------------------------------------

def _sliced_out(module: nn.Module, keep: np.ndarray) -> nn.Module:
    idx = torch.from_numpy(keep)
    if isinstance(module, nn.Linear):
        new = nn.Linear(module.in_features, len(keep), bias=module.bias is not None)
    elif isinstance(module, nn.modules.conv._ConvNd):
        new = type(module)(module.in_channels, len(keep), module.kernel_size, stride=module.stride,
                           padding=module.padding, dilation=module.dilation, bias=module.bias is not None,
                           padding_mode=module.padding_mode)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        new = type(module)(len(keep), eps=module.eps, momentum=module.momentum, affine=module.affine,
                           track_running_stats=module.track_running_stats)
        for name in ("running_mean", "running_var"):
            if getattr(module, name) is not None:
                getattr(new, name).copy_(getattr(module, name)[idx])
        if module.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(module.num_batches_tracked)
    elif isinstance(module, nn.PReLU):
        new = nn.PReLU(len(keep))
    else:
        raise InputError(f"cannot slice the channels of {type(module).__name__}")
    with torch.no_grad():
        if getattr(module, "weight", None) is not None:
            new.weight.copy_(module.weight[idx])
        if getattr(module, "bias", None) is not None:
            new.bias.copy_(module.bias[idx])
    return new.to(module.weight.dtype if getattr(module, "weight", None) is not None else torch.float32).eval()


def _sliced_in(module: nn.Module, keep: np.ndarray, block: int, mean: np.ndarray | None,
               refit_rows: np.ndarray | None) -> nn.Module:
    """The consumer reading only channels `keep`; the removed channels' mean (if given) is folded
    into its bias, or a Linear is re-fitted by least squares on `refit_rows` (its original inputs)."""
    dtype = module.weight.dtype
    w = module.weight.detach().to(torch.float64).numpy()
    b = module.bias.detach().to(torch.float64).numpy() if module.bias is not None else np.zeros(w.shape[0])
    if isinstance(module, nn.Linear):
        cols = _columns(keep, block)
        new_w = w[:, cols]
        new_b = b.copy()
        if refit_rows is not None and len(refit_rows) > len(cols) + 1:
            new_w, new_b = _refit(refit_rows, w, b, cols)
        elif mean is not None:
            gone = np.setdiff1d(np.arange(w.shape[1]), cols)
            new_b = b + w[:, gone] @ mean[gone]
        new = nn.Linear(len(cols), w.shape[0], bias=module.bias is not None or mean is not None)
    else:
        new_w = w[:, keep]
        new_b = b.copy()
        if mean is not None:
            gone = np.setdiff1d(np.arange(w.shape[1]), keep)
            # exact away from zero padding; at the borders the padding reads zeros, as before
            new_b = b + w[:, gone].reshape(w.shape[0], len(gone), -1).sum(axis=2) @ mean[gone]
        new = type(module)(len(keep), module.out_channels, module.kernel_size, stride=module.stride,
                           padding=module.padding, dilation=module.dilation,
                           bias=module.bias is not None or mean is not None, padding_mode=module.padding_mode)
    with torch.no_grad():
        new.weight.copy_(torch.from_numpy(np.ascontiguousarray(new_w)))
        if new.bias is not None:
            new.bias.copy_(torch.from_numpy(new_b))
    return new.to(dtype).eval()


def _refit(x: np.ndarray, w: np.ndarray, b: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights [out, len(cols)] and bias that best reproduce x @ w.T + b from x[:, cols] (least
    squares, with a tiny ridge so that constant or collinear columns stay well posed)."""
    target = x @ w.T + b
    a = np.concatenate([x[:, cols], np.ones((len(x), 1))], axis=1)
    ridge = 1e-8 * max(float(np.mean(a * a)), 1e-30) * len(x)
    gram = a.T @ a + ridge * np.eye(a.shape[1])
    theta = np.linalg.solve(gram, a.T @ target)
    return theta[:-1].T, theta[-1]


def apply_keep(model: nn.Module, group: ChannelGroup, keep: np.ndarray, stats: dict[str, np.ndarray] | None,
               refit: bool) -> None:
    """Shrink `group` in place to the channels `keep` (sorted indices)."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    for path in [group.producer, *group.followers]:
        set_module(model, path, _sliced_out(get_module(model, path), keep))
    for path, block in group.consumers:
        module = get_module(model, path)
        rows = stats.get(path) if stats else None
        mean = rows.mean(axis=0) if rows is not None and len(rows) else None
        if mean is not None and isinstance(module, nn.modules.conv._ConvNd):
            mean = mean[:group.channels]
        refit_rows = rows if refit and isinstance(module, nn.Linear) and rows is not None else None
        set_module(model, path, _sliced_in(module, keep, block, mean, refit_rows))


# -- the user-facing steps ----------------------------------------------------------------------------

def prune_channels(model: nn.Module, example_inputs, *, amount: float | None = None,
                   keep: Mapping[str, int] | None = None, layers: Sequence[str] | None = None,
                   exclude: Sequence[str] = (), data=None, refit: bool = True) -> Compression:
    """A copy of `model` with output neurons / channels removed: `amount` (a fraction, per layer)
    of every prunable Linear/conv that `layers` (globs, default all) selects, or `keep`
    ({glob: channels to keep}). The layers that read them shrink too. `data` (samples [N, ...])
    makes the choice data-aware and enables the bias correction and least-squares refit."""
    if (amount is None) == (keep is None):
        raise InputError("prune_channels needs exactly one of amount= or keep=")
    if amount is not None and not 0.0 <= amount < 1.0:
        raise InputError(f"amount must be a fraction in [0, 1), got {amount}")
    student = copy_model(model)
    groups = channel_groups(student, example_inputs)
    _check_patterns(groups, layers if keep is None else list(keep))
    stats = None
    paths = sorted({p for g in groups.values() if g.prunable for p, _ in g.consumers})
    if data is not None:
        stats = consumer_inputs(student, paths, data)
    changes = []
    for path, group in groups.items():
        if any(scope_matches(path, g) for g in exclude):
            continue
        module = get_module(student, path)
        wanted = list(keep) if keep is not None else layers
        if not group.prunable:
            if wanted is None or any(scope_matches(path, g) for g in wanted):
                changes.append(LayerChange(path, "kept", describe(module), "unchanged", count_params(module),
                                           count_params(module), group.reason))
            continue
        target = keep_count(path, group.channels, amount, keep, layers, "channels")
        if target is None or target == group.channels:
            continue
        before = _group_params(student, group)
        kept = top(channel_scores(student, group, stats), target)
        apply_keep(student, group, kept, stats, refit)
        after = _group_params(student, group)
        readers = ", ".join(p for p, _ in group.consumers)
        changes.append(LayerChange(path, "channels", describe(module), describe(get_module(student, path)), before,
                                   after, f"kept {target}/{group.channels}; shrank {readers}"
                                   + (" (refit)" if refit and stats else "")))
        if stats is not None:  # every layer downstream now sees other inputs
            stats = consumer_inputs(student, paths, data)
    return Compression(student, changes, original=model)


def _group_params(model: nn.Module, group: ChannelGroup) -> int:
    paths = [group.producer, *group.followers, *(p for p, _ in group.consumers)]
    return sum(count_params(get_module(model, p)) for p in paths)


def _check_patterns(groups: dict[str, ChannelGroup], patterns) -> None:
    for g in patterns or []:
        if not any(scope_matches(p, g) for p in groups):
            raise InputError(f"layer pattern {g!r} matches no Linear or conv layer; the layers are: "
                             f"{', '.join(list(groups)[:30])}")


def refactor_pair(model: nn.Module, example_inputs, first: str, second: str, width: int, *, data=None) -> Compression:
    """Re-factor two consecutive layers `first` -> `second` through `width` hidden features: by
    truncated SVD of W2 W1 when nothing but identity lies between them (exact when `width` is the
    pair's rank), else by pruning `first`'s outputs to `width` with a least-squares refit of `second`."""
    student = copy_model(model)
    groups = channel_groups(student, example_inputs)
    group = groups.get(first)
    if group is None:
        raise InputError(f"{first!r} is not a Linear or conv layer of the model; the layers are: {', '.join(groups)}")
    if [p for p, _ in group.consumers] != [second] and group.prunable:
        readers = ", ".join(p for p, _ in group.consumers)
        raise InputError(f"{first} -> {second} is not a pair: {first}'s outputs are read by {readers}")
    if not group.prunable:
        raise InputError(f"cannot narrow {first} -> {second}: {group.reason}")
    m1, m2 = get_module(student, first), get_module(student, second)
    if not 1 <= width:
        raise InputError(f"width must be at least 1, got {width}")
    before = count_params(m1) + count_params(m2)
    linear_path = not group.path_ops and not group.followers and isinstance(m1, nn.Linear) \
        and isinstance(m2, nn.Linear) and group.consumers[0][1] == 1
    if not linear_path:
        stats = consumer_inputs(student, [second], data) if data is not None else None
        apply_keep(student, group, top(channel_scores(student, group, stats), width), stats, refit=True)
        after = count_params(get_module(student, first)) + count_params(get_module(student, second))
        how = "pruned hidden units" + (" + least-squares refit" if data is not None else "")
        return Compression(student, [LayerChange(f"{first}+{second}", "pair", f"{describe(m1)} + {describe(m2)}",
                                                 f"width {width}", before, after,
                                                 f"{how} (through {', '.join(group.path_ops)})")], original=model)
    from .lowrank import factorize  # noqa: PLC0415

    w1 = m1.weight.detach().double().numpy()
    w2 = m2.weight.detach().double().numpy()
    b1 = m1.bias.detach().double().numpy() if m1.bias is not None else np.zeros(w1.shape[0])
    b2 = m2.bias.detach().double().numpy() if m2.bias is not None else np.zeros(w2.shape[0])
    product = w2 @ w1
    width = min(width, min(product.shape))
    down, up = factorize(product, width)
    new1 = nn.Linear(w1.shape[1], width, bias=False)
    new2 = nn.Linear(width, w2.shape[0])
    with torch.no_grad():
        new1.weight.copy_(torch.from_numpy(down))
        new2.weight.copy_(torch.from_numpy(up))
        new2.bias.copy_(torch.from_numpy(w2 @ b1 + b2))
    set_module(student, first, new1.to(m1.weight.dtype).eval())
    set_module(student, second, new2.to(m2.weight.dtype).eval())
    s = np.linalg.svd(product, compute_uv=False)
    err = float(s[width] / s[0]) if width < len(s) and s[0] > 0 else 0.0
    return Compression(student, [LayerChange(f"{first}+{second}", "pair", f"{describe(m1)} + {describe(m2)}",
                                             f"{describe(new1)} + {describe(new2)}", before,
                                             count_params(new1) + count_params(new2),
                                             f"SVD of W2 W1, ||W2W1 - W_d||_2/||W2W1||_2 = {err:.4f}")],
                       original=model)
