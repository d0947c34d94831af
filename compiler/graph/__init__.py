"""Whole networks on VTA: a graph of float operators, int8 quantization, placement, compile once, run many.

>>> g = Graph("net", (3, 32, 32)); ...                       # doctest: +SKIP
>>> qg = quantize(g, calibration_samples)                    # doctest: +SKIP
>>> with compile_network(qg, "sim") as net:                  # doctest: +SKIP
...     probs = net(x)
"""

from vta.compiler.graph.graph import OPS, Graph, GraphError, Node
from vta.compiler.graph.network import Network, compile_network
from vta.compiler.graph.partition import Placement, partition
from vta.compiler.graph.quantize import QNode, QuantizedGraph, quantize

__all__ = ["OPS", "Graph", "GraphError", "Network", "Node", "Placement", "QNode", "QuantizedGraph",
           "compile_network", "partition", "quantize"]
