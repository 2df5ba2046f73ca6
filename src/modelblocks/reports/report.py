"""The compile report: what the model costs on the device, in total and per layer."""

from __future__ import annotations

from ..backend.c.emitter import CSource
from ..ir.graph import Graph
from ..memory.planner import plan_naive
from ..ops.registry import Prop, get_op


def live_bytes_per_step(buffers, steps: int) -> list[int]:
    """Bytes of arena buffers (tensors and scratch) alive at each step 0..steps-1: a buffer is alive
    from its first use to its last use, both included. No plan can be smaller than the maximum."""
    live = [0] * steps
    for b in buffers:
        for t in range(max(b.first_use, 0), min(b.last_use, steps - 1) + 1):
            live[t] += b.size
    return live


def build_report(graph: Graph, source: CSource, estimates: dict | None = None) -> dict:
    """Per layer: op, module, shapes, MACs, params, weight bytes, activation bytes (what the layer
    writes: 0 for views, which share their input's memory) and live arena bytes at its step.
    Totals: flash = weights (+ code, when `estimates` gives it), RAM = arena (+ stack, likewise).
    `estimates` is {"code_bytes", "stack_bytes", "code_method", "stack_method"} (reports.analyze)."""
    buffers = source.plan.buffers
    # steps run 0..len(nodes)-1; outputs copied out after the last node make one more step
    steps = max([len(graph.nodes)] + [b.last_use + 1 for b in buffers])
    live = live_bytes_per_step(buffers, steps)
    layers = []
    total_macs = 0
    for index, node in enumerate(graph.nodes):
        op = get_op(node.op)
        ins = [graph.tensors[i] if i else None for i in node.inputs]
        outs = [graph.tensors[o] for o in node.outputs]
        macs = int(op.macs(node, ins, outs))
        params = sum(t.numel for t in ins if t is not None and t.is_constant)
        total_macs += macs
        layers.append({
            "index": index, "name": node.name, "op": node.op, "scope": node.scope, "source": node.source,
            "inputs": [list(t.shape) if t is not None else None for t in ins],
            "outputs": [list(t.shape) for t in outs],
            "macs": macs, "params": params,
            "weight_bytes": sum(t.nbytes for t in ins if t is not None and t.is_constant),
            "output_bytes": sum(t.nbytes for t in outs),
            "activation_bytes": 0 if op.has(Prop.ALIAS) else sum(t.nbytes for t in outs),
            "scratch_bytes": op.node_scratch_bytes(node, ins, outs),
            "live_bytes": live[index],
        })
    params = sum(t.numel for t in graph.constants())
    bound = max(live, default=0)
    estimates = estimates or {}
    code, stack = estimates.get("code_bytes"), estimates.get("stack_bytes")
    return {
        "name": graph.name,
        "arena_bytes": source.arena_bytes,
        "arena_lower_bound": bound,
        "arena_naive_bytes": plan_naive(buffers)[1],
        "plan_over_bound": source.arena_bytes / bound if bound else 1.0,
        "weights_bytes": source.weights_bytes,
        "macs": total_macs,
        "params": params,
        "inputs": {n: list(graph.tensors[n].shape) for n in graph.inputs},
        "outputs": {n: list(graph.tensors[n].shape) for n in graph.outputs},
        "live_bytes_per_step": live,
        "totals": {
            "weights_bytes": source.weights_bytes,
            "code_bytes": code,
            "code_method": estimates.get("code_method", "not estimated (modelblocks analyze estimates it)"),
            "flash_bytes": source.weights_bytes + (code or 0),
            "arena_bytes": source.arena_bytes,
            "stack_bytes": stack,
            "stack_method": estimates.get("stack_method", "not estimated (modelblocks analyze estimates it)"),
            "ram_bytes": source.arena_bytes + (stack or 0),
        },
        "layers": layers,
    }


def format_report(report: dict, max_rows: int = 60) -> str:
    """A plain-text table (rich renders it in the CLI; tests read this)."""
    lines = [f"model {report['name']}: {len(report['layers'])} layers, {report['macs']:,} MACs, "
             f"{report['params']:,} params, weights {report['weights_bytes']:,} B, arena {report['arena_bytes']:,} B"]
    if "arena_lower_bound" in report:
        lines.append(f"arena plan {report['arena_bytes']:,} B, lower bound {report['arena_lower_bound']:,} B "
                     f"(plan / bound {report['plan_over_bound']:.3f}), no reuse {report['arena_naive_bytes']:,} B")
    lines.append(f"{'#':>3}  {'op':<18} {'module':<28} {'output':<18} {'MACs':>12} {'params':>9} "
                 f"{'weight B':>9} {'act B':>9} {'live B':>9}")
    for row in report["layers"][:max_rows]:
        out = "x".join(str(d) for d in row["outputs"][0]) if row["outputs"] else ""
        lines.append(f"{row['index']:>3}  {row['op']:<18} {(row['scope'] or '-')[:28]:<28} {out:<18} "
                     f"{row['macs']:>12,} {row['params']:>9,} {row['weight_bytes']:>9,} "
                     f"{row.get('activation_bytes', row['output_bytes']):>9,} {row.get('live_bytes', 0):>9,}")
    if len(report["layers"]) > max_rows:
        lines.append(f"... {len(report['layers']) - max_rows} more layers")
    return "\n".join(lines)
