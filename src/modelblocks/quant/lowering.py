"""How an op file says "this float op runs in int8, like so": a lowering rule and its context.

An op file registers a rule for one or more float ops:

    @lowers("linear")
    def _lower_linear(q: QuantContext, node: Node) -> bool:
        ...           # decide first; return False (emitting nothing) to keep the node in float32
        q.emit("q_linear", [q.int8(x), wq, bias, mult, shift], [q.output(y)], {...})
        return True

`passes/quantize.py` walks the float graph in order and calls the rule of each node that the user
did not keep in float. A rule reads the float graph (`q.float_tensor`), the parameters of float
activations (`q.params`: a QDQ model's own where a float tensor carries them as `Tensor.quant`, see
frontend/onnx_qdq.py, else calibrated ones), and builds the int8 graph through the helpers below; the pass
inserts `quantize` / `dequantize` nodes wherever an int8 node meets a float one. Every int8 tensor
carries its QuantParams; attributes and constant tables hold the integers the kernels use (zero
points, multipliers, shifts, clamps), so the NumPy reference needs nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, QuantParams, Tensor
from . import arith

if TYPE_CHECKING:  # pragma: no cover
    pass

Rule = Callable[["QuantContext", Node], bool]
_RULES: dict[str, Rule] = {}


def lowers(*float_ops: str):
    """Decorate `rule(q, node) -> bool` as the int8 lowering of the named float ops."""

    def wrap(fn: Rule) -> Rule:
        for op in float_ops:
            if op in _RULES:
                raise ValueError(f"float op {op!r} has two int8 lowering rules")
            _RULES[op] = fn
        return fn

    return wrap


def rule_for(op: str) -> Rule | None:
    from ..ops.registry import all_ops  # noqa: PLC0415  (loads every op file, which registers the rules)

    all_ops()
    return _RULES.get(op)


def int8_ops() -> list[str]:
    rule_for("")
    return sorted(_RULES)


class QuantContext:
    """The state of one int8 rewrite: the float graph being read, the int8 graph being built."""

    def __init__(self, source: Graph, params: dict[str, QuantParams], graph: Graph, missing: set[str] | None = None):
        self.source = source  # the float graph (read only)
        self._params = params  # calibrated per-tensor parameters of float activations
        # without calibration (a QDQ model): activations that have no parameters of their own are collected
        # here (with placeholder parameters) so that the caller can name them all at once
        self.missing = missing
        self.graph = graph  # the graph being built: float tensors keep their names, int8 ones are new
        self.int8_of: dict[str, str] = {}  # float tensor name -> its int8 tensor in `graph`
        self.float_of: dict[str, str] = {}  # float tensor name -> a float tensor in `graph` holding it
        self.node: Node | None = None  # the float node being lowered
        self._source_nodes: set[str] = {n.name for n in source.nodes}
        self._used_nodes: set[str] = set()  # node names taken in the new graph

    # -- reading the float graph ------------------------------------------------------------
    def float_tensor(self, name: str) -> Tensor:
        return self.source.tensors[name]

    def params(self, name: str) -> QuantParams:
        """int8 parameters of float tensor `name`: the QDQ model's own (`Tensor.quant`, per tensor), else the
        calibrated ones (a constant's come from its own values)."""
        t = self.source.tensors[name]
        if t.quant is not None and t.dtype == DType.float32 and t.quant.axis is None and len(t.quant.scale) == 1:
            return t.quant
        if name not in self._params:
            if t.data is None and self.missing is not None:
                self.missing.add(name)
                return QuantParams((1.0,), (0,))
            if t.data is None:
                raise KeyError(f"tensor {name} was not observed during calibration")
            data = t.data.astype(np.float64)
            self._params[name] = arith.params_from_range(data.min(initial=0.0), data.max(initial=0.0))
        return self._params[name]

    def is_constant(self, name: str) -> bool:
        return self.source.tensors[name].is_constant

    def constant_data(self, name: str) -> np.ndarray:
        return self.source.tensors[name].data

    # -- building the int8 graph ------------------------------------------------------------
    def int8(self, name: str) -> str:
        """The int8 tensor holding float tensor `name`: already lowered, a quantized constant, or the
        output of a `quantize` node inserted here."""
        if name in self.int8_of:
            return self.int8_of[name]
        t = self.source.tensors[name]
        p = self.params(name)
        if t.is_constant:
            data = arith.quantize_values(t.data, p.scale[0], p.zero_point[0])
            qname = self.fresh(f"{name}_q")
            self.graph.add_tensor(Tensor(qname, t.shape, DType.int8, p, data))
        else:
            qname = self.fresh(f"{name}_q")
            self.graph.add_tensor(Tensor(qname, t.shape, DType.int8, p))
            self._append(Node(self.fresh_node(f"quantize_{name}"), "quantize", (self.float_in_graph(name),),
                              (qname,), {"scale": p.scale[0], "zero_point": p.zero_point[0]},
                              *self._origin_of(name)))
        self.int8_of[name] = qname
        return qname

    def float_in_graph(self, name: str) -> str:
        """The float tensor holding `name` in the new graph (dequantizing its int8 version if needed)."""
        if name in self.float_of:
            return self.float_of[name]
        if name in self.int8_of:
            qname = self.int8_of[name]
            p = self.graph.tensors[qname].quant
            t = self.source.tensors[name]
            fname = name if name not in self.graph.tensors else self.fresh(name)
            self.graph.add_tensor(Tensor(fname, t.shape, DType.float32))
            self._append(Node(self.fresh_node(f"dequantize_{name}"), "dequantize", (qname,), (fname,),
                              {"scale": p.scale[0], "zero_point": p.zero_point[0]}, *self._origin_of(name)))
            self.float_of[name] = fname
            return fname
        raise KeyError(f"tensor {name} is not available in the new graph")

    def output(self, name: str, params: QuantParams | None = None) -> str:
        """Declare the int8 tensor for float output `name` of the current node (calibrated parameters
        unless `params` is given) and return its name."""
        t = self.source.tensors[name]
        p = params or self.params(name)
        qname = self.fresh(f"{name}_q")
        self.graph.add_tensor(Tensor(qname, t.shape, DType.int8, p))
        self.int8_of[name] = qname
        return qname

    def same_params_output(self, name: str, like_int8: str) -> str:
        """An int8 output with the parameters of int8 tensor `like_int8` (data movement, max pool)."""
        return self.output(name, self.graph.tensors[like_int8].quant)

    def qparams(self, int8_name: str) -> tuple[float, int]:
        """(scale, zero point) of a per-tensor int8 tensor of the new graph."""
        p = self.graph.tensors[int8_name].quant
        return p.scale[0], p.zero_point[0]

    def constant(self, base: str, data: np.ndarray, dtype: DType, quant: QuantParams | None = None) -> str:
        data = np.asarray(data)
        name = self.fresh(base)
        self.graph.add_tensor(Tensor(name, tuple(int(d) for d in data.shape), dtype, quant,
                                     np.array(data, dtype=dtype.numpy, order="C")))
        return name

    def weight(self, name: str, axis: int = 0) -> tuple[str, np.ndarray]:
        """Float constant `name` as int8, symmetric per channel along `axis`: (int8 name, float32 scales).
        A QDQ model's weight keeps its own scales, which give back its int8 values exactly."""
        data = self.constant_data(name)
        scales = self._model_weight_scales(name, axis)
        if scales is not None:
            shape = [1] * data.ndim
            shape[axis] = -1
            q = arith.round_half_away(data.astype(np.float64) / scales.astype(np.float64).reshape(shape))
            q = np.clip(q, arith.QMIN, arith.QMAX).astype(np.int8)
        else:
            scales = arith.symmetric_scales(data, axis)
            q = arith.quantize_symmetric(data, scales, axis)
        params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)
        return self.constant(f"{name}_q", q, DType.int8, params), scales

    def _model_weight_scales(self, name: str, axis: int) -> np.ndarray | None:
        """The QDQ model's scales of weight `name` per channel along `axis` (None: it has none, or along
        another axis, where the int8 kernels cannot use them); nonzero zero points are refused."""
        t = self.source.tensors[name]
        p = t.quant
        if p is None or t.dtype != DType.float32:
            return None
        if any(p.zero_point):
            from ..errors import UnsupportedOpError  # noqa: PLC0415

            raise UnsupportedOpError(
                f"weight {name} of node {self.node.name if self.node else '?'} has nonzero zero points "
                f"{list(p.zero_point[:8])} in the QDQ model; ModelBlocks' int8 kernels take symmetric weights "
                "(zero point 0). What to change: quantize the weights symmetrically (onnxruntime: weight_type="
                "QuantType.QInt8, or extra_options={'WeightSymmetric': True})")
        channels = t.shape[axis] if t.shape else 1
        if p.axis is None:
            return np.full(channels, p.scale[0], dtype=np.float32)
        if p.axis != axis or len(p.scale) != channels:
            return None
        return np.asarray(p.scale, dtype=np.float32)

    def bias(self, name: str | None, scales: np.ndarray, channels: int) -> str:
        """Float bias (or None: zeros) as int32 with per-channel `scales` (= input scale * weight scale)."""
        data = np.zeros(channels) if not name else self.constant_data(name).astype(np.float64)
        q = arith.round_half_away(data / np.asarray(scales, dtype=np.float64))
        if np.any(np.abs(q) > arith.INT32_MAX):
            raise ValueError(f"bias {name} does not fit int32 at scale {float(np.min(scales)):.3g}")
        params = QuantParams(tuple(float(s) for s in np.broadcast_to(scales, (channels,))), (0,) * channels, 0)
        return self.constant(f"{name}_q" if name else f"{self.node.name}_bias_q", q.astype(np.int32), DType.int32, params)

    def requant_tables(self, reals: Sequence[float] | np.ndarray, base: str = "") -> tuple[str, str]:
        """Constant tables (int32 multipliers, int8 shifts) for per-channel real multipliers."""
        mult, shift = arith.quantize_multipliers(reals)
        base = base or self.node.name
        return self.constant(f"{base}_mult", mult, DType.int32), self.constant(f"{base}_shift", shift, DType.int8)

    def clamp_range(self, node: Node, out_int8: str) -> tuple[int, int]:
        """The int8 [act_min, act_max] of the node's fused float clamp under the output's parameters."""
        scale, zp = self.qparams(out_int8)
        lo, hi = node.attrs.get("act_min"), node.attrs.get("act_max")
        qlo = arith.QMIN if lo is None else int(arith.quantize_values(np.float32(lo), scale, zp))
        qhi = arith.QMAX if hi is None else int(arith.quantize_values(np.float32(hi), scale, zp))
        return qlo, qhi

    def emit(self, op: str, inputs: Sequence[str], outputs: Sequence[str], attrs: dict | None = None,
             name: str = "") -> Node:
        """Append a node (named after the float node, with its scope and source line)."""
        base = self.node
        node = Node(self.fresh_node(name or base.name), op, tuple(inputs), tuple(outputs), dict(attrs or {}),
                    base.scope, base.source)
        self._append(node)
        return node

    def fresh(self, base: str) -> str:
        """A tensor name unused in both graphs, so a new int8 tensor never shadows a float one."""
        name, i = base, 1
        while name in self.graph.tensors or name in self.source.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    def fresh_node(self, base: str) -> str:
        """A node name: the float node's own name for the first node it lowers to, else one that no
        node of either graph uses."""
        own = self.node is not None and base == self.node.name
        name, i = base, 1
        while name in self._used_nodes or (name in self._source_nodes and not (own and name == base)):
            name, i = f"{base}_{i}", i + 1
        self._used_nodes.add(name)
        return name

    # -- internals --------------------------------------------------------------------------
    def _append(self, node: Node) -> None:
        self.graph.nodes.append(node)

    def _origin_of(self, tensor_name: str) -> tuple[str, str]:
        """Scope and source line of the node that produced a float tensor (for inserted casts)."""
        for n in self.source.nodes:
            if tensor_name in n.outputs:
                return n.scope, n.source
        return (self.node.scope, self.node.source) if self.node is not None else ("", "")
