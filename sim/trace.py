"""The predicted timeline of a run: Chrome/Perfetto trace JSON and a PNG Gantt chart.

One track per module (fetch, load, compute, store), one slice per instruction, plus a
"wait" slice wherever a module held a command but waited for a dependency token. Load and
compute slices side by side are latency hiding at work; long waits show what to reorder.
Open the JSON at https://ui.perfetto.dev or chrome://tracing. PNG output needs matplotlib
(``pip install ".[plot]"`` in the pynq-vta checkout) and imports it only when asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vta.errors import VTAError
from vta.isa import ALU_NAMES, MEM_NAMES, OP_ALU, OP_FINISH, OP_GEMM, OP_LOAD, OP_STORE, DecodedStream
from vta.sim.perf import TRACKS, Timing

__all__ = ["MissingExtraError", "busy_overlap", "chrome_trace", "label", "write_json", "write_png"]

_COLORS = {"LOAD": "#4c72b0", "GEMM": "#dd8452", "ALU": "#55a868", "STORE": "#c44e52", "FINISH": "#8172b3",
           "NOP": "#bbbbbb", "fetch": "#937860"}


class MissingExtraError(VTAError, ImportError):
    """An optional dependency (an extra of pynq-vta) is not installed."""

    exit_code = 2


def label(s: DecodedStream, i: int) -> str:
    """A short name for instruction ``i``: what a timeline slice should say."""
    op = int(s.opcode[i])
    if op in (OP_LOAD, OP_STORE):
        if int(s.mem["x_size"][i]) == 0:
            return "NOP"
        return "STORE" if op == OP_STORE else f"LOAD {MEM_NAMES.get(int(s.mem['memory_type'][i]), '?')}"
    if op == OP_GEMM:
        return "GEMM reset" if int(s.gemm["reset_reg"][i]) else "GEMM"
    if op == OP_ALU:
        name = ALU_NAMES.get(int(s.alu["alu_opcode"][i]), "?")
        return f"ALU {name} {int(s.alu['imm'][i])}" if int(s.alu["use_imm"][i]) else f"ALU {name}"
    return "FINISH" if op == OP_FINISH else f"opcode {op}"


def chrome_trace(t: Timing) -> dict:
    """The timeline in the Chrome trace-event format (timestamps in microseconds at the model clock)."""
    us = 1.0 / t.clock_mhz
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "VTA (Pynq-Z1 model)"}}]
    for tid, track in enumerate(TRACKS):
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": track}})
    for iv in t.intervals:
        tid = TRACKS.index(iv.track)
        if iv.start > iv.wait_from:
            events.append({"name": "wait", "cat": "stall", "ph": "X", "pid": 1, "tid": tid, "ts": iv.wait_from * us,
                           "dur": (iv.start - iv.wait_from) * us, "args": {"index": iv.index, "for": iv.label}})
        events.append({"name": iv.label, "cat": iv.track, "ph": "X", "pid": 1, "tid": tid, "ts": iv.start * us,
                       "dur": (iv.end - iv.start) * us,
                       "args": {"index": iv.index, "start_cycle": iv.start, "cycles": iv.end - iv.start}})
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": t.as_dict()}


def write_json(t: Timing, path: str | Path) -> None:
    Path(path).write_text(json.dumps(chrome_trace(t)))


def _merged(t: Timing, track: str) -> np.ndarray:
    """Busy intervals of one track, merged, as an (n, 2) array of [start, end)."""
    iv = sorted((x.start, x.end) for x in t.intervals if x.track == track and x.end > x.start)
    out: list[list[int]] = []
    for a, b in iv:
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def busy_overlap(t: Timing, a: str, b: str) -> int:
    """Cycles in which tracks ``a`` and ``b`` both execute instructions (latency hiding)."""
    x, y = _merged(t, a), _merged(t, b)
    if not len(x) or not len(y):
        return 0
    lo = np.maximum(x[:, None, 0], y[None, :, 0])
    hi = np.minimum(x[:, None, 1], y[None, :, 1])
    return int(np.clip(hi - lo, 0, None).sum())


def write_png(t: Timing, path: str | Path, title: str = "") -> None:
    """A Gantt chart of the timeline; raises MissingExtraError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as e:
        raise MissingExtraError('PNG timelines need matplotlib: pip install ".[plot]" in the pynq-vta checkout '
                                '(or pip install matplotlib)') from e
    us = 1.0 / t.clock_mhz
    fig = Figure(figsize=(12, 3.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for row, track in enumerate(reversed(TRACKS)):
        ivs = [x for x in t.intervals if x.track == track]
        waits = [(x.wait_from * us, (x.start - x.wait_from) * us) for x in ivs if x.start > x.wait_from]
        ax.broken_barh(waits, (row - 0.3, 0.6), facecolors="#eeeeee", edgecolor="none")
        for kind, color in _COLORS.items():
            bars = [(x.start * us, max(x.end - x.start, 1) * us) for x in ivs
                    if (track == "fetch") == (kind == "fetch") and (track == "fetch" or x.label.split()[0] == kind)]
            if bars:
                ax.broken_barh(bars, (row - 0.4, 0.8), facecolors=color, edgecolor="none")
    ax.set_yticks(range(len(TRACKS)), labels=list(reversed(TRACKS)))
    ax.set_xlabel(f"time (µs at {t.clock_mhz:g} MHz)")
    ax.set_xlim(0, t.cycles * us)
    ax.set_title(title or f"{t.cycles} cycles, {t.seconds * 1e3:.3f} ms, GEMM utilization {t.utilization:.0%}, "
                 f"{t.gops:.1f} GOPS")
    ax.legend(handles=[Patch(color=c, label=k) for k, c in _COLORS.items()] + [Patch(color="#eeeeee", label="wait")],
              loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=8, fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(str(path))
