"""``vta bench``: per-layer and whole-network time, CPU float32 against VTA int8, as a table, JSON and a bar chart.

CPU side: the float model, one layer at a time with im2col + float32 BLAS through numpy (the
fastest honest CPU path a numpy user has), each layer's best of ``repeat`` runs on this machine;
the total is the sum of those bests, as the VTA total is the sum of its rows. VTA side:
each VTA node's device time — *modeled* by the Pynq-Z1 performance model on the simulator,
*measured* wall-clock on a board backend — plus, measured on this machine, the CPU-fallback
layers and every host step (quantizing the input, copies and layout changes at VTA/CPU
boundaries, launching), so the total shows what the fallback costs (Amdahl).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.compiler.graph.cpu import CPU_PATH
from vta.compiler.graph.graph import Graph
from vta.compiler.graph.network import Network
from vta.compiler.graph.quantize import FLOAT_OPS, QuantizedGraph, fuse
from vta.errors import VTAError

__all__ = ["BenchResult", "LayerTime", "bench", "float_layer_times", "write_png"]


@dataclass(frozen=True)
class LayerTime:
    name: str
    op: str
    placement: str
    cpu_s: float
    vta_s: float


@dataclass(frozen=True)
class BenchResult:
    """What ``vta bench`` reports; :meth:`to_json` is the file's schema."""

    model: str
    vta_timing: str
    bit_exact: bool
    layers: list[LayerTime]
    cpu_total_s: float
    vta_total_s: float

    @property
    def speedup(self) -> float:
        return self.cpu_total_s / self.vta_total_s if self.vta_total_s > 0 else math.inf

    def to_json(self) -> dict:
        return {"vta_timing": self.vta_timing, "bit_exact": self.bit_exact,
                "layers": [{"name": r.name, "op": r.op, "placement": r.placement, "cpu_s": r.cpu_s,
                            "vta_s": r.vta_s} for r in self.layers],
                "total": {"cpu_s": self.cpu_total_s, "vta_s": self.vta_total_s, "speedup": self.speedup}}

    def table(self) -> str:
        label = self.vta_timing
        lines = [f"{self.model}: CPU = {CPU_PATH}, float32, measured on this machine (best of N); "
                 f"VTA = int8, device time {label}" + (" for the Pynq-Z1 by the performance model" if label == "modeled"
                                                      else " on the board") +
                 ", CPU-fallback layers and host steps measured on this machine",
                 f"{'layer':16s} {'op':16s} {'on':3s} {'CPU ms':>9s} {'VTA ms (' + label + ')':>20s} {'speed-up':>9s}"]
        for r in self.layers:
            sp = f"{r.cpu_s / r.vta_s:8.2f}x" if r.vta_s > 0 and r.cpu_s > 0 else f"{'-':>9s}"
            lines.append(f"{r.name:16s} {r.op:16s} {r.placement:3s} {r.cpu_s * 1e3:9.3f} {r.vta_s * 1e3:20.3f} {sp}")
        lines.append(f"{'total':16s} {'':16s} {'':3s} {self.cpu_total_s * 1e3:9.3f} {self.vta_total_s * 1e3:20.3f} "
                     f"{self.speedup:8.2f}x")
        lines.append(f"bit-exact against the int8 CPU reference: {'yes' if self.bit_exact else 'NO'}")
        return "\n".join(lines)


def float_layer_times(graph: Graph, x: np.ndarray, repeat: int) -> tuple[dict[str, float], float]:
    """Best-of-``repeat`` float32 seconds per fused node, and of the whole forward pass, for one sample."""
    nodes, _, bounds = fuse(graph)
    best: dict[str, float] = {n.name: math.inf for n in nodes}
    total = math.inf
    for _ in range(repeat):
        vals: dict[str, np.ndarray] = {}
        start = time.perf_counter()
        for node in nodes:
            t0 = time.perf_counter()
            if node.inputs:
                y = FLOAT_OPS[node.op](node, *[vals[i] for i in node.inputs])
                lo, hi = bounds.get(node.name, (-math.inf, math.inf))
                vals[node.name] = np.clip(y, lo, hi) if (lo, hi) != (-math.inf, math.inf) else y
            else:
                vals[node.name] = x[None].astype(np.float32)
            best[node.name] = min(best[node.name], time.perf_counter() - t0)
        total = min(total, time.perf_counter() - start)
    return best, total


def bench(graph: Graph, qg: QuantizedGraph, net: Network, x: np.ndarray, repeat: int = 3) -> BenchResult:
    """Time ``graph`` on the CPU and ``net`` on its backend for the sample ``x`` (C, H, W).

    One inference checks the result (and, if it is the network's first, captures its streams).
    Then, on a board, ``repeat`` more are measured, best per node; with a timing model ``repeat``
    timing passes (:meth:`Network.run_quantized` with ``device=False``) measure the host side
    without paying for the simulator again.
    """
    out = net.run_quantized(qg.quantize_input(x))  # the first inference also captures the streams
    modeled = net.modeled_seconds()
    timing = "modeled" if modeled else "measured"
    best: dict[str, float] = {}
    quant_s = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        xq = qg.quantize_input(x)
        quant_s = min(quant_s, time.perf_counter() - t0)
        net.run_quantized(xq, device=not modeled)
        for name, t in net.profile.items():
            dev = modeled.get(name, t.device_s)
            best[name] = min(best.get(name, math.inf), dev + t.cpu_s + t.host_s)
    ref = qg.reference(x)
    exact = all(np.array_equal(out[o], ref[o]) for o in qg.outputs)
    cpu, _ = float_layer_times(graph, x, repeat)
    layers = []
    for name, node in qg.nodes.items():
        vta_s = best[name] + (quant_s if node.op == "input" else 0.0)
        layers.append(LayerTime(name, node.op, net.placement[name].target, cpu[name], vta_s))
    return BenchResult(graph.name, timing, exact, layers, sum(r.cpu_s for r in layers), sum(r.vta_s for r in layers))


def write_png(result: BenchResult, path: str | Path) -> None:
    """A bar chart per layer (log scale), CPU against VTA, the VTA label in the legend and title.

    Raises
    ------
    VTAError
        If matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise VTAError('the bar chart needs matplotlib: pip install ".[plot]" from the pynq-vta checkout '
                       "(or pass --no-png)") from None
    rows = [r for r in result.layers if r.cpu_s > 0 or r.vta_s > 0]
    idx = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(rows)), 5))
    ax.bar(idx - 0.2, [r.cpu_s * 1e3 for r in rows], 0.4, label=f"CPU float32 ({CPU_PATH}), measured")
    ax.bar(idx + 0.2, [r.vta_s * 1e3 for r in rows], 0.4, label=f"VTA int8, {result.vta_timing}")
    ax.set_xticks(idx, [f"{r.name} ({r.placement})" for r in rows], rotation=90, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms per inference")
    ax.set_title(f"{result.model}: total CPU {result.cpu_total_s * 1e3:.1f} ms, VTA ({result.vta_timing}) "
                 f"{result.vta_total_s * 1e3:.1f} ms, speed-up {result.speedup:.2f}x")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(result: BenchResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result.to_json(), indent=1) + "\n")
