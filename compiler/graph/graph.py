"""The network graph: a DAG of float operators with their weights, checked as it is built.

A :class:`Graph` is what a user (or a model zoo function) writes: one ``input`` of shape
(C, H, W), then one builder call per operator, each naming its inputs by the name the builder
returned. Shapes are inferred and checked at every call, so a mismatch is reported at the node
that causes it. Batch is 1 per inference (VTA's GEMM core takes one row, ``BATCH`` = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vta.errors import VTAError

__all__ = ["OPS", "Graph", "GraphError", "Node"]

# op -> number of inputs; "input" has none.
OPS = {"input": 0, "conv2d": 1, "dense": 1, "add": 2, "relu": 1, "clip": 1, "max_pool": 1,
       "global_avg_pool": 1, "flatten": 1, "softmax": 1, "argmax": 1}


class GraphError(VTAError, ValueError):
    """A network that cannot be built, quantized or compiled; the message names the node."""

_PREFIX = {"conv2d": "conv", "global_avg_pool": "gap", "max_pool": "pool"}


@dataclass(frozen=True, eq=False)
class Node:
    """One operator: its inputs (node names), attributes, float parameters and output shape."""

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


class Graph:
    """A network under construction; every builder returns the new node's name.

    Examples
    --------
    >>> g = Graph("tiny", (1, 8, 8))
    >>> h = g.conv2d(g.input, np.zeros((16, 1, 3, 3), np.float32), np.zeros(16, np.float32), pad=1)
    >>> g.shape(g.relu(h))
    (16, 8, 8)
    """

    def __init__(self, name: str, input_shape: Sequence[int]):
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GraphError(f"graph {name}: input shape {tuple(input_shape)!r}: expected (C, H, W), all >= 1")
        self.name = name
        self.nodes: dict[str, Node] = {}
        self.outputs: list[str] = []
        self.input = self._add(Node("input", "input", (), shape))

    # --- structure ------------------------------------------------------------------------
    def _add(self, node: Node) -> str:
        if node.name in self.nodes:
            raise GraphError(f"graph {self.name}: node name {node.name!r} is used twice")
        self.nodes[node.name] = node
        return node.name

    def _name(self, op: str, name: str | None) -> str:
        if name is not None:
            return name
        k = sum(n.op == op for n in self.nodes.values()) + 1
        return f"{_PREFIX.get(op, op)}{k}"

    def _in(self, name: str, where: str, rank: int | None = None) -> tuple[int, ...]:
        if name not in self.nodes:
            raise GraphError(f"{where}: input {name!r} is not a node of graph {self.name}")
        shape = self.nodes[name].shape
        if rank is not None and len(shape) != rank:
            want = "(C, H, W)" if rank == 3 else "(features,)"
            raise GraphError(f"{where}: input {name!r} has shape {shape}, expected a {want} tensor")
        return shape

    def shape(self, name: str) -> tuple[int, ...]:
        """The output shape of node ``name``."""
        return self._in(name, "shape")

    def consumers(self, name: str) -> list[str]:
        """Nodes that read ``name``, in graph order."""
        return [n.name for n in self.nodes.values() if name in n.inputs]

    def output(self, *names: str) -> None:
        """Mark the network's outputs (default: the last node added)."""
        for n in names:
            self._in(n, "output")
        self.outputs = list(names)

    def result_names(self) -> list[str]:
        return self.outputs or [list(self.nodes)[-1]]

    # --- operators ------------------------------------------------------------------------
    def conv2d(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None, stride: int = 1, pad: int = 0,
               name: str | None = None) -> str:
        """2-D convolution, weight OIHW (square kernel), equal stride and padding on H and W."""
        name = self._name("conv2d", name)
        where = f"conv2d {name}"
        c, h, w = self._in(x, where, 3)
        weight = _floats(weight, where, "weight", 4)
        o, i, kh, kw = weight.shape
        if i != c:
            raise GraphError(f"{where}: weight has {i} input channels, input {x!r} has {c}")
        if kh != kw:
            raise GraphError(f"{where}: kernel is {kh}x{kw}; only square kernels are supported")
        _ints(where, stride=stride, pad=pad)
        oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        if oh < 1 or ow < 1:
            raise GraphError(f"{where}: a {kh}x{kw} kernel does not fit the {h}x{w} input padded by {pad}")
        params = {"weight": weight, "bias": _bias(bias, o, where)}
        return self._add(Node(name, "conv2d", (x,), (o, oh, ow), {"stride": stride, "pad": pad, "kernel": kh},
                              params))

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None, name: str | None = None) -> str:
        """Fully connected layer, weight (out_features, in_features)."""
        name = self._name("dense", name)
        where = f"dense {name}"
        (k,) = self._in(x, where, 1)
        weight = _floats(weight, where, "weight", 2)
        if weight.shape[1] != k:
            raise GraphError(f"{where}: weight takes {weight.shape[1]} features, input {x!r} has {k}")
        params = {"weight": weight, "bias": _bias(bias, weight.shape[0], where)}
        return self._add(Node(name, "dense", (x,), (weight.shape[0],), {}, params))

    def add(self, a: str, b: str, name: str | None = None) -> str:
        """Element-wise sum (a residual connection)."""
        name = self._name("add", name)
        sa, sb = self._in(a, f"add {name}"), self._in(b, f"add {name}")
        if sa != sb:
            raise GraphError(f"add {name}: input shapes differ: {a!r} is {sa}, {b!r} is {sb}")
        return self._add(Node(name, "add", (a, b), sa))

    def relu(self, x: str, name: str | None = None) -> str:
        """max(x, 0); fused into the producing conv, dense or add when it is the only reader."""
        name = self._name("relu", name)
        return self._add(Node(name, "relu", (x,), self._in(x, f"relu {name}")))

    def clip(self, x: str, lo: float, hi: float, name: str | None = None) -> str:
        """min(max(x, lo), hi), e.g. ReLU6; fused like relu."""
        name = self._name("clip", name)
        if not float(lo) < float(hi):
            raise GraphError(f"clip {name}: lo={lo!r} must be below hi={hi!r}")
        return self._add(Node(name, "clip", (x,), self._in(x, f"clip {name}"), {"lo": float(lo), "hi": float(hi)}))

    def max_pool(self, x: str, size: int, stride: int, pad: int = 0, name: str | None = None) -> str:
        """Max over size x size windows; padding never wins."""
        name = self._name("max_pool", name)
        where = f"max_pool {name}"
        c, h, w = self._in(x, where, 3)
        _ints(where, size=size, stride=stride, pad=pad)
        if size < 1 or pad >= size:
            raise GraphError(f"{where}: size={size}, pad={pad}: expected size >= 1 and pad < size")
        oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
        if oh < 1 or ow < 1:
            raise GraphError(f"{where}: a {size}x{size} window does not fit the {h}x{w} input padded by {pad}")
        return self._add(Node(name, "max_pool", (x,), (c, oh, ow), {"size": size, "stride": stride, "pad": pad}))

    def global_avg_pool(self, x: str, name: str | None = None) -> str:
        """Mean over H and W: (C, H, W) -> (C, 1, 1)."""
        name = self._name("global_avg_pool", name)
        c, _, _ = self._in(x, f"global_avg_pool {name}", 3)
        return self._add(Node(name, "global_avg_pool", (x,), (c, 1, 1)))

    def flatten(self, x: str, name: str | None = None) -> str:
        """(C, H, W) -> (C*H*W,) in C, H, W order."""
        name = self._name("flatten", name)
        shape = self._in(x, f"flatten {name}", 3)
        return self._add(Node(name, "flatten", (x,), (int(np.prod(shape)),)))

    def softmax(self, x: str, name: str | None = None) -> str:
        """Class probabilities (float) from logits."""
        name = self._name("softmax", name)
        return self._add(Node(name, "softmax", (x,), self._in(x, f"softmax {name}", 1)))

    def argmax(self, x: str, name: str | None = None) -> str:
        """The index of the largest logit."""
        name = self._name("argmax", name)
        self._in(x, f"argmax {name}", 1)
        return self._add(Node(name, "argmax", (x,), ()))

    def add_node(self, node: Node) -> str:
        """Add a node built elsewhere (an importer); its op must be one of :data:`OPS`."""
        if node.op not in OPS or node.op == "input":
            raise GraphError(f"node {node.name}: unsupported op {node.op!r}; supported: "
                             f"{', '.join(o for o in OPS if o != 'input')}")
        for i in node.inputs:
            self._in(i, f"{node.op} {node.name}")
        return self._add(node)


def _floats(a: object, where: str, what: str, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise GraphError(f"{where}: {what} must be a finite float array with {ndim} dimensions, got "
                         f"{arr.dtype} {arr.shape}")
    return arr.astype(np.float32)


def _bias(bias: object, n: int, where: str) -> np.ndarray:
    if bias is None:
        return np.zeros(n, np.float32)
    b = _floats(bias, where, "bias", 1)
    if b.shape != (n,):
        raise GraphError(f"{where}: bias has {b.shape[0]} values, expected {n} (one per output channel)")
    return b


def _ints(where: str, **values: object) -> None:
    for k, v in values.items():
        low = 0 if k == "pad" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise GraphError(f"{where}: {k}={v!r}: expected an integer >= {low}")
