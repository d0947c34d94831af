"""Post-training quantization: a float :class:`Graph` plus calibration samples -> a :class:`QuantizedGraph`.

Every tensor is int8 with a power-of-two scale 2**-frac (``frac`` fractional bits), chosen per
layer from the largest magnitude the calibration samples produce, so requantizing is a shift.
Weights are int8 with their own per-layer ``frac``, biases int32 at the accumulator's scale
(input frac + weight frac). Requantization rounds to nearest: ``(acc + bias + 2**(s-1)) >> s``;
a plain truncating shift would bias every layer by half a step. relu / clip nodes that are the
only reader of a conv, dense or add fold into it as the clip bounds of its requantization.

:meth:`QuantizedGraph.reference` runs the whole network in exact integer numpy; a VTA run
must match it bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vta.compiler.graph import cpu
from vta.compiler.graph.graph import Graph, GraphError, Node

__all__ = ["FLOAT_OPS", "QNode", "QuantizedGraph", "eval_int", "float_forward", "frac_bits", "fuse", "quantize"]

_ACC_LIMIT = 1 << 30  # biases and accumulators stay well inside int32
_FUSABLE = ("conv2d", "dense", "add")


@dataclass(frozen=True, eq=False)
class QNode:
    """A quantized operator: int8 weight, int32 bias, shift and clip bounds; ``frac`` of its output."""

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    frac: int | None
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    fused: tuple[str, ...] = ()

    @property
    def shift(self) -> int:
        return int(self.attrs.get("shift", 0))

    @property
    def bounds(self) -> tuple[int, int]:
        return int(self.attrs.get("lo", -128)), int(self.attrs.get("hi", 127))


def fuse(graph: Graph) -> tuple[list[Node], dict[str, str], dict[str, tuple[float, float]]]:
    """Nodes after folding sole-reader relu/clip into conv/dense/add; alias map; float clip bounds per node."""
    alias: dict[str, str] = {}
    bounds: dict[str, tuple[float, float]] = {}
    outputs = set(graph.result_names())
    kept: list[Node] = []
    for node in graph.nodes.values():
        ins = tuple(alias.get(i, i) for i in node.inputs)
        src = graph.nodes[node.inputs[0]] if node.inputs else None
        if node.op in ("relu", "clip") and src is not None and alias.get(src.name, src.name) in bounds:
            target = alias.get(src.name, src.name)
            if len(graph.consumers(src.name)) == 1 and src.name not in outputs:
                lo, hi = bounds[target]
                nlo, nhi = (0.0, math.inf) if node.op == "relu" else (node.attrs["lo"], node.attrs["hi"])
                bounds[target] = (max(lo, nlo), min(hi, nhi))
                alias[node.name] = target
                continue
        kept.append(Node(node.name, node.op, ins, node.shape, node.attrs, node.params))
        if node.op in _FUSABLE:
            bounds[node.name] = (-math.inf, math.inf)
    return kept, alias, bounds


def _act(x: np.ndarray, b: tuple[float, float]) -> np.ndarray:
    return np.clip(x, b[0], b[1]) if b != (-math.inf, math.inf) else x


def float_forward(nodes: list[Node], bounds: dict[str, tuple[float, float]], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the fused float network for a batch ``x`` (N, C, H, W) (float32, CPU)."""
    vals: dict[str, np.ndarray] = {}
    for node in nodes:
        a = [vals[i] for i in node.inputs]
        vals[node.name] = _act(FLOAT_OPS[node.op](node, *a) if node.inputs else x.astype(np.float32),
                               bounds.get(node.name, (-math.inf, math.inf)))
    return vals


FLOAT_OPS: dict[str, Callable[..., np.ndarray]] = {
    "conv2d": lambda n, x: cpu.conv2d_float(x, n.params["weight"], n.params["bias"], n.attrs["stride"],
                                            n.attrs["pad"]),
    "dense": lambda n, x: x @ n.params["weight"].T + n.params["bias"],
    "add": lambda n, a, b: a + b,
    "relu": lambda n, x: np.maximum(x, 0),
    "clip": lambda n, x: np.clip(x, n.attrs["lo"], n.attrs["hi"]),
    "max_pool": lambda n, x: cpu.max_pool(x, n.attrs["size"], n.attrs["stride"], n.attrs["pad"]),
    "global_avg_pool": lambda n, x: x.mean(axis=(2, 3), keepdims=True),
    "flatten": lambda n, x: x.reshape(x.shape[0], -1),
    "softmax": lambda n, x: cpu.softmax(x.astype(np.float64)).astype(np.float32),
    "argmax": lambda n, x: x.argmax(axis=-1),
}


def frac_bits(maxabs: float) -> int:
    """The most fractional bits that keep ``maxabs`` within int8 (127)."""
    if not maxabs > 0:
        return 7
    return math.floor(math.log2(127.0 / maxabs))


def _quant_bounds(b: tuple[float, float], frac: int) -> tuple[int, int]:
    lo = -128 if b[0] == -math.inf else max(-128, round(b[0] * 2.0 ** frac))
    hi = 127 if b[1] == math.inf else min(127, round(b[1] * 2.0 ** frac))
    return lo, hi


def _weighted(node: Node, fin: int, fout_want: int, b: tuple[float, float]) -> QNode:
    w = node.params["weight"]
    fw = frac_bits(float(np.abs(w).max()))
    facc = fin + fw
    fout = min(fout_want, facc)
    wq = np.clip(np.rint(w * 2.0 ** fw), -127, 127).astype(np.int8)
    bq = np.rint(node.params["bias"].astype(np.float64) * 2.0 ** facc)
    if np.abs(bq).max(initial=0) >= _ACC_LIMIT:
        raise GraphError(f"{node.op} {node.name}: a bias of {np.abs(node.params['bias']).max():g} does not fit int32 "
                         f"at the accumulator scale 2**-{facc}; the weights or inputs are badly scaled")
    lo, hi = _quant_bounds(b, fout)
    attrs = dict(node.attrs, shift=facc - fout, lo=lo, hi=hi, weight_frac=fw)
    return QNode(node.name, node.op, node.inputs, node.shape, fout, attrs, wq, bq.astype(np.int64))


@dataclass
class QuantizedGraph:
    """The int8 network: nodes in order, the input's frac, aliases of fused relu/clip nodes."""

    name: str
    nodes: dict[str, QNode]
    input_frac: int
    outputs: list[str]
    alias: dict[str, str]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """float (C, H, W) or (N, C, H, W) -> int8 at the input's scale (rounded, saturated)."""
        node = self.nodes["input"]
        x = np.asarray(x, np.float32)
        if x.shape == node.shape:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != node.shape:
            raise GraphError(f"graph {self.name}: input of shape {x.shape}, expected {node.shape} or "
                             f"(N, {', '.join(map(str, node.shape))})")
        return np.clip(np.rint(x * 2.0 ** self.input_frac), -128, 127).astype(np.int8)

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        """A tensor's float value; argmax indices and softmax probabilities pass through."""
        f = self.nodes[self.alias.get(name, name)].frac
        return q if f is None else q.astype(np.float32) * np.float32(2.0 ** -f)

    def reference(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the int8 network for one sample or a batch, exact integer numpy (NCHW)."""
        vals: dict[str, np.ndarray] = {"input": self.quantize_input(x)}
        for node in self.nodes.values():
            if node.op != "input":
                vals[node.name] = eval_int(self, node, [vals[i] for i in node.inputs])
        return vals


def eval_int(qg: QuantizedGraph, node: QNode, args: list[np.ndarray]) -> np.ndarray:
    """One node of the int8 network on NCHW (or (N, features)) int8 inputs: the arithmetic VTA reproduces."""
    lo, hi = node.bounds
    if node.op == "conv2d":
        acc = cpu.conv2d_int(args[0], node.weight, node.attrs["stride"], node.attrs["pad"])
        return cpu.requantize(acc + node.bias[:, None, None], node.shift, lo, hi)
    if node.op == "dense":
        acc = cpu.dense_int(args[0], node.weight)
        return cpu.requantize(acc + node.bias, node.shift, lo, hi)
    ins = [qg.nodes[i].frac for i in node.inputs]
    if node.op == "add":
        return cpu.add_int(args[0], ins[0], args[1], ins[1], node.frac, lo, hi)
    if node.op in ("relu", "clip"):
        return np.clip(args[0], lo, hi).astype(np.int8)
    if node.op == "max_pool":
        return cpu.max_pool(args[0], node.attrs["size"], node.attrs["stride"], node.attrs["pad"])
    if node.op == "global_avg_pool":
        return cpu.gap_int(args[0])
    if node.op == "flatten":
        return args[0].reshape(args[0].shape[0], -1)
    if node.op == "softmax":
        return cpu.softmax(args[0].astype(np.float64) * 2.0 ** -ins[0]).astype(np.float32)
    return args[0].argmax(axis=-1)


def quantize(graph: Graph, calibration: np.ndarray) -> QuantizedGraph:
    """Quantize ``graph`` with scales from ``calibration`` (N, C, H, W) float samples.

    Raises
    ------
    GraphError
        If the calibration batch has the wrong shape or is not finite, or a bias cannot be represented.

    Examples
    --------
    >>> qg = quantize(g, samples)            # doctest: +SKIP
    >>> qg.reference(samples[0])["logits"]   # doctest: +SKIP
    """
    cal = np.asarray(calibration)
    want = graph.nodes["input"].shape
    if cal.ndim != 4 or cal.shape[1:] != want or len(cal) < 1:
        raise GraphError(f"graph {graph.name}: calibration data of shape {cal.shape}: expected (samples, "
                         f"{', '.join(map(str, want))}) with at least one sample")
    if not np.issubdtype(cal.dtype, np.floating) or not np.isfinite(cal).all():
        raise GraphError(f"graph {graph.name}: calibration data must be finite floats, got {cal.dtype}")
    nodes, alias, bounds = fuse(graph)
    vals = float_forward(nodes, bounds, cal)
    frac: dict[str, int | None] = {}
    out: dict[str, QNode] = {}
    for node in nodes:
        fin = frac[node.inputs[0]] if node.inputs else None
        want_f = frac_bits(float(np.abs(vals[node.name]).max())) if node.op not in ("softmax", "argmax") else None
        b = bounds.get(node.name, (-math.inf, math.inf))
        if node.op in ("conv2d", "dense"):
            q = _weighted(node, fin, want_f, b)
        elif node.op in ("input", "add"):
            lo, hi = _quant_bounds(b, want_f)
            q = QNode(node.name, node.op, node.inputs, node.shape, want_f, {"lo": lo, "hi": hi})
        elif node.op in ("relu", "clip"):
            fb = (0.0, math.inf) if node.op == "relu" else (node.attrs["lo"], node.attrs["hi"])
            lo, hi = _quant_bounds(fb, fin)
            q = QNode(node.name, node.op, node.inputs, node.shape, fin, {"lo": lo, "hi": hi})
        else:
            f = None if node.op in ("softmax", "argmax") else fin
            q = QNode(node.name, node.op, node.inputs, node.shape, f, dict(node.attrs))
        fused = tuple(a for a, t in alias.items() if t == node.name)
        out[node.name] = QNode(q.name, q.op, q.inputs, q.shape, q.frac, q.attrs, q.weight, q.bias, fused)
        frac[node.name] = q.frac
    outputs = [alias.get(o, o) for o in graph.result_names()]
    return QuantizedGraph(graph.name, out, int(frac["input"]), outputs, alias)
