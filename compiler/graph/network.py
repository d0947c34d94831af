"""Compile a quantized network once, run it many times: VTA nodes replay verified streams, the rest is numpy.

:func:`compile_network` places every node (:mod:`.partition`), compiles each VTA node once,
allocates every device buffer once (activations in the packed NCHW1n16c layout, channels padded
to the block, weights and biases uploaded once). The first inference runs each VTA program through
the runtime (built, verified, run) and keeps its stream (:mod:`.streams`); every later ``net(x)``
quantizes the input, replays the streams and runs the CPU nodes in between. A tensor moves between
the host and the device only at a VTA/CPU boundary, and changes layout only when a CPU node needs
NCHW (a CPU conv or dense, the heads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vta.compiler.graph import layouts, space_to_depth
from vta.compiler.graph.graph import GraphError
from vta.compiler.graph.partition import Placement, partition
from vta.compiler.graph.quantize import QNode, QuantizedGraph, eval_int
from vta.compiler.graph.streams import Stream, capture, replay
from vta.compiler.graph.tuning import TuningLog, load_tuning_log
from vta.compiler.graph.vta_ops import bias_with_rounding, conv2d_program, dense_program, pick_conv2d_config
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.compiler.program import Program
from vta.errors import LoweringError, ScheduleError
from vta.runtime import DeviceBuffer, Runtime

__all__ = ["Network", "NodeTime", "compile_network"]

log = logging.getLogger(__name__)


@dataclass
class NodeTime:
    """One node's share of the last inference: device run, CPU-fallback compute, everything else on the host."""

    device_s: float = 0.0
    cpu_s: float = 0.0
    host_s: float = 0.0


@dataclass
class _VtaNode:
    program: Program
    config: Conv2dConfig | None
    args: list[DeviceBuffer]
    streams: list[Stream] | None = None  # captured on the first inference
    modeled_s: float | None = None


class Network:
    """A compiled network; call it on one sample (C, H, W) or a batch (N, C, H, W) of floats.

    Use :func:`compile_network` to make one; ``close()`` (or ``with``) frees its device buffers.
    """

    def __init__(self, qg: QuantizedGraph, rt: Runtime, owns_runtime: bool, timeout_s: float):
        self.graph, self.runtime, self._owns, self.timeout_s = qg, rt, owns_runtime, timeout_s
        self.placement: dict[str, Placement] = {}
        self.vta: dict[str, _VtaNode] = {}
        self.device: dict[str, DeviceBuffer] = {}   # activations in device memory (packed)
        self.owned: list[DeviceBuffer] = []
        self.geom: dict[str, tuple[int, int, int]] = {}
        self.folded: dict[str, tuple[int, int, tuple[int, int, int]]] = {}  # tensor -> (fold, pad, device geometry)
        self.layout: dict[str, str] = {}
        self.profile: dict[str, NodeTime] = {}
        self.closed = False

    # --- running --------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Dequantized outputs (argmax: indices) per output node, one row per sample."""
        xq = self.graph.quantize_input(x)
        rows = [self.run_quantized(xq[i:i + 1]) for i in range(len(xq))]
        return {o: np.concatenate([self.graph.dequantize(o, r[o]) for r in rows]) for o in self.graph.outputs}

    def run_quantized(self, xq: np.ndarray, keep: bool = False, device: bool = True) -> dict[str, np.ndarray]:
        """One int8 sample (1, C, H, W) through the network; the outputs (every tensor if ``keep``), NCHW.

        ``device=False`` is a timing pass: everything but the device runs (CPU nodes, copies,
        layout changes), so host costs can be measured without the simulator; its results are
        not the network's.
        """
        if self.closed:
            raise GraphError(f"network {self.graph.name} was closed")
        want = (1, *self.graph.nodes["input"].shape)
        if not isinstance(xq, np.ndarray) or xq.dtype != np.int8 or xq.shape != want:
            raise GraphError(f"network {self.graph.name}: node input: expected int8 {want}, got "
                             f"{getattr(xq, 'dtype', type(xq).__name__)} {getattr(xq, 'shape', '')}")
        vals: dict[str, np.ndarray] = {}
        prof = {n: NodeTime() for n in self.graph.nodes}
        for name, node in self.graph.nodes.items():
            start = time.perf_counter()
            t = prof[name]
            if name in self.vta and device:
                v = self.vta[name]
                if v.streams is None:
                    v.streams, v.modeled_s, t.device_s = capture(self.runtime, v.program, v.args, self.owned)
                else:
                    t.device_s = replay(self.runtime, v.streams, self.timeout_s)
            elif self.placement[name].target == "vta":
                pass  # a flatten of a device tensor, or a device run skipped in a timing pass
            elif node.op == "input":
                self._store(name, xq, vals)
            else:
                args = [self._fetch(i, _NEEDS.get(node.op, "any"), vals, t) for i in node.inputs]
                if node.op == "add" and len({self._host_layout(i) for i in node.inputs}) > 1:
                    args = [layouts.to_packed(a, self.geom[i]) if self._host_layout(i) == "nchw" else a
                            for a, i in zip(args, node.inputs)]
                c0 = time.perf_counter()
                y = eval_int(self.graph, node, args)
                t.cpu_s = time.perf_counter() - c0
                self._store(name, y, vals)
            t.host_s = time.perf_counter() - start - t.device_s - t.cpu_s
        self.profile = prof
        names = self.graph.nodes if keep else self.graph.outputs
        return {n: self._fetch(n, "nchw", vals, prof[n]) for n in names}

    def _host_layout(self, name: str) -> str:
        return self.layout[name]

    def _fetch(self, name: str, need: str, vals: dict[str, np.ndarray], t: NodeTime) -> np.ndarray:
        """A tensor on the host in ``need`` layout ("nchw" or "any"); reads device memory once per inference."""
        if name not in vals:
            buf = self.device[name]
            vals[name] = buf.copy_to(np.empty(layouts.packed_shape(self.geom[name]), np.int8))
        x = vals[name]
        if need == "nchw" and self._host_layout(name) == "packed":
            return layouts.from_packed(x, self.geom[name], self.graph.nodes[name].shape)
        return x

    def _store(self, name: str, y: np.ndarray, vals: dict[str, np.ndarray]) -> None:
        vals[name] = y
        if name in self.folded:
            s, pad, geom = self.folded[name]
            nchw = y if self.layout[name] == "nchw" else layouts.from_packed(y, self.geom[name],
                                                                             self.graph.nodes[name].shape)
            self.device[name].copy_from(layouts.to_packed(space_to_depth.fold_input(nchw, s, pad, geom), geom))
        elif name in self.device:
            packed = y if self.layout[name] == "packed" else layouts.to_packed(y, self.geom[name])
            self.device[name].copy_from(packed)

    # --- reporting ------------------------------------------------------------------------
    def modeled_seconds(self) -> dict[str, float]:
        """Modeled Pynq-Z1 seconds per VTA node (simulator backend only, after the first inference)."""
        return {n: v.modeled_s for n, v in self.vta.items() if v.modeled_s is not None}

    def describe(self) -> str:
        """One line per node: op, shape, placement and reason."""
        lines = []
        for name, node in self.graph.nodes.items():
            p = self.placement[name]
            fused = f" (+{', '.join(node.fused)})" if node.fused else ""
            lines.append(f"{name:12s} {node.op + fused:24s} {node.shape!s:16s} {p.target:3s}  {p.reason}")
        return "\n".join(lines)

    def close(self) -> None:
        """Free every buffer this network allocated (and its runtime if it made one); idempotent."""
        if self.closed:
            return
        _free_all(self.runtime, self.owned)
        if self._owns:
            self.runtime.close()
        self.closed = True

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NEEDS = {"conv2d": "nchw", "dense": "nchw", "softmax": "nchw", "argmax": "nchw"}


def _free_all(rt: Runtime, bufs: list[DeviceBuffer]) -> None:
    for buf in bufs:
        if buf.alive:
            rt.free(buf)
    bufs.clear()


def _check_node(node: QNode) -> None:
    if node.op not in ("conv2d", "dense"):
        return
    w, b = node.weight, node.bias
    if not isinstance(w, np.ndarray) or w.dtype != np.int8:
        raise GraphError(f"{node.op} {node.name}: weight must be int8, got {getattr(w, 'dtype', type(w).__name__)}")
    if not isinstance(b, np.ndarray) or not np.issubdtype(b.dtype, np.integer) or b.shape != (w.shape[0],):
        raise GraphError(f"{node.op} {node.name}: bias must be {w.shape[0]} integers")
    if np.abs(b.astype(np.int64)).max(initial=0) >= 1 << 30:
        raise GraphError(f"{node.op} {node.name}: bias does not fit int32 with room for the accumulator")


def _fold(net: Network, node: QNode) -> tuple[int, tuple[int, int, int], int] | None:
    """(fold, folded input geometry, folded kernel) when a conv reads a host tensor only it reads."""
    src = node.inputs[0]
    readers = [n for n in net.graph.nodes.values() if src in n.inputs]
    if node.op != "conv2d" or net.placement[src].target != "cpu" or len(readers) != 1:
        return None
    s = space_to_depth.factor(net.geom[src][0], node.attrs["stride"], layouts.BLOCK())
    if not s:
        return None
    geom, ka = space_to_depth.folded_geometry(net.geom[src][0], node.shape[1], node.shape[2], node.attrs["kernel"], s)
    return s, geom, ka


def _program(node: QNode, geom: tuple[int, int, int], tuned: TuningLog | None,
             fold: tuple[int, tuple[int, int, int], int] | None) -> tuple[Program, Conv2dConfig | None]:
    """The node's program and, for a conv2d, its knobs: the tuning log's if it has the workload."""
    lo, hi = node.bounds
    if node.op == "conv2d":
        c, h, w = fold[1] if fold else geom
        k, stride, pad = (fold[2], 1, 0) if fold else (node.attrs["kernel"], node.attrs["stride"], node.attrs["pad"])
        wl = Conv2dWorkload(node.name, h, w, layouts.padded(c), layouts.padded(node.shape[0]), k, stride, pad)
        cfg = pick_conv2d_config(wl, tuned.config(wl) if tuned is not None else None)
        return conv2d_program(wl, node.shift, lo, hi, cfg), cfg
    k = layouts.padded(geom[0]) * geom[1] * geom[2]
    return dense_program(node.name, k // layouts.BLOCK(), layouts.padded(node.shape[0]) // layouts.BLOCK(),
                         node.shift, lo, hi), None


def _params(node: QNode, geom: tuple[int, int, int], fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Packed int8 weight and int32 bias (rounding offset folded in) of a VTA node."""
    if node.op == "conv2d":
        w = layouts.pack_conv_weight(space_to_depth.fold_weight(node.weight, fold) if fold else node.weight)
        b = bias_with_rounding(node.bias, node.shift, layouts.padded(node.shape[0]))
        return w, b.reshape(1, -1, 1, 1, 1, layouts.BLOCK())
    w = layouts.pack_dense_weight_for(node.weight, geom)
    b = bias_with_rounding(node.bias, node.shift, layouts.padded(node.shape[0]))
    return w, b.reshape(1, -1, 1, layouts.BLOCK())


def compile_network(qg: QuantizedGraph, backend: str | Runtime = "sim", *, tuning_log: str | None = None,
                    timeout_s: float = 10.0, progress: Callable[[str], None] | None = None) -> Network:
    """Place, compile and allocate: the network is then ready to run any number of times.

    Parameters
    ----------
    qg : the quantized network (:func:`~vta.compiler.graph.quantize`).
    backend : a runtime backend name ("sim", "pynq") or a :class:`Runtime` (kept open on close).
    tuning_log : an AutoTVM log (TopHub format): conv2d knobs for the workloads it has; the others
        get ResNet-18's tuned knobs for a layer of that shape, else the default tiler.
    timeout_s : device timeout per replayed run.
    progress : called with a short message per compiled node.

    Raises
    ------
    GraphError
        A weight or bias of the wrong dtype or shape (naming the node). Nothing stays allocated.
    """
    for node in qg.nodes.values():
        _check_node(node)
    tuned = load_tuning_log(tuning_log) if tuning_log is not None else None
    rt = backend if isinstance(backend, Runtime) else Runtime(backend)
    net = Network(qg, rt, not isinstance(backend, Runtime), timeout_s)
    try:
        _plan(net, tuned, progress)
    except BaseException:
        net.close()
        raise
    return net


def _plan(net: Network, tuned: TuningLog | None, progress: Callable[[str], None] | None) -> None:
    qg, rt = net.graph, net.runtime
    layouts.infer(net)
    programs: dict[str, tuple[Program, Conv2dConfig | None]] = {}
    folds: dict[str, tuple[int, tuple[int, int, int], int]] = {}
    refused: dict[str, str] = {}
    net.placement = partition(qg)
    for name, p in dict(net.placement).items():
        if p.target == "vta" and qg.nodes[name].op in ("conv2d", "dense"):
            if progress:
                progress(f"compiling {name}")
            fold = _fold(net, qg.nodes[name])  # producers only ever move to the CPU: a fold stays valid
            if fold:
                folds[name] = fold
            try:
                programs[name] = _program(qg.nodes[name], net.geom[qg.nodes[name].inputs[0]], tuned, fold)
            except (ScheduleError, LoweringError) as e:
                log.info("%s falls back to the CPU: %s", name, e)
                refused[name] = str(e)
    net.placement = partition(qg, refused)
    layouts.infer(net)
    for name, (s, geom, ka) in folds.items():
        node = qg.nodes[name]
        if name not in refused:
            net.folded[node.inputs[0]] = (s, node.attrs["pad"], geom)
            why = net.placement[name].reason.removesuffix(" — VTA")
            net.placement[name] = Placement(name, "vta", f"{why}; space-to-depth by {s} on the host: a {ka}x{ka} "
                                                         f"conv on {geom[0]} channels — VTA")
    vta_nodes = [n for n in qg.nodes if net.placement[n].target == "vta"]
    for name in vta_nodes:
        node = qg.nodes[name]
        for t in (*node.inputs, name):
            if t not in net.device:
                src = node.inputs[0] if node.op == "flatten" and t == name else None
                if src is not None:
                    net.device[t] = net.device[src]
                else:
                    geom = net.folded[t][2] if t in net.folded else net.geom[t]
                    net.device[t] = _alloc(rt, net, layouts.packed_bytes(geom))
    for name in vta_nodes:
        node = qg.nodes[name]
        if node.op == "flatten":
            continue
        w, b = _params(node, net.geom[node.inputs[0]], net.folded.get(node.inputs[0], (0,))[0])
        wbuf, bbuf = _alloc(rt, net, w.nbytes), _alloc(rt, net, b.nbytes)
        wbuf.copy_from(w)
        bbuf.copy_from(b)
        args = [net.device[node.inputs[0]], wbuf, bbuf, net.device[name]]
        prog, cfg = programs[name]
        net.vta[name] = _VtaNode(prog, cfg, args)


def _alloc(rt: Runtime, net: Network, nbytes: int) -> DeviceBuffer:
    buf = rt.alloc(max(int(nbytes), 1))
    net.owned.append(buf)
    return buf
