"""The compile report: what the model costs on the device, in total and per layer."""

from __future__ import annotations

from ..backend.c.emitter import CSource
from ..ir.graph import Graph
from ..ops.registry import get_op


def build_report(graph: Graph, source: CSource) -> dict:
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
            "scratch_bytes": int(op.scratch_bytes(node, ins, outs)),
        })
    params = sum(t.numel for t in graph.constants())
    return {
        "name": graph.name,
        "arena_bytes": source.arena_bytes,
        "weights_bytes": source.weights_bytes,
        "macs": total_macs,
        "params": params,
        "inputs": {n: list(graph.tensors[n].shape) for n in graph.inputs},
        "outputs": {n: list(graph.tensors[n].shape) for n in graph.outputs},
        "layers": layers,
    }


def format_report(report: dict, max_rows: int = 60) -> str:
    """A plain-text table (rich renders it in the CLI; tests read this)."""
    lines = [f"model {report['name']}: {len(report['layers'])} layers, {report['macs']:,} MACs, "
             f"{report['params']:,} params, weights {report['weights_bytes']:,} B, arena {report['arena_bytes']:,} B"]
    lines.append(f"{'#':>3}  {'op':<18} {'module':<28} {'output':<18} {'MACs':>12} {'params':>9}")
    for row in report["layers"][:max_rows]:
        out = "x".join(str(d) for d in row["outputs"][0]) if row["outputs"] else ""
        lines.append(f"{row['index']:>3}  {row['op']:<18} {(row['scope'] or '-')[:28]:<28} {out:<18} "
                     f"{row['macs']:>12,} {row['params']:>9,}")
    if len(report["layers"]) > max_rows:
        lines.append(f"... {len(report['layers']) - max_rows} more layers")
    return "\n".join(lines)
