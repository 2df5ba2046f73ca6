from .dtypes import DType
from .graph import Graph, Node, QuantParams, Tensor
from .serialize import load_graph, save_graph
from .verify import verify

__all__ = ["DType", "Graph", "Node", "QuantParams", "Tensor", "load_graph", "save_graph", "verify"]
