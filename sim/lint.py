"""Hardware-divergence lint: constructs the Xilinx Pynq bitstream executes differently (spec §3.11, §2.7).

The reference simulator and the HLS design agree on every program the VTA compiler emits, but
not on these: ALU MUL and LOAD ACC_8BIT (not in the HLS design); padded WGT loads (pads
ignored); UOP loads with y_size > 1 or padding (only x_size micro-ops copied); shift amounts
outside -15..15 (HLS uses the low 5 bits, signed); STOREs of accumulator entries whose 8-bit
output shadow was not written by the instruction that last wrote them (LOAD ACC, reset GEMM,
MUL); accumulating GEMMs that write one entry twice within three micro-ops (the HLS pipeline
declares no dependence, spec §3.3); GEMMs and ALUs that run micro-ops a 2-D or padded UOP load
writes in the reference but not on the bitstream (there they hold whatever the micro-op SRAM
held before). The first five are visible in the instruction words (immediate shifts) or in the
data (two-operand shifts); the last three need the accumulator entries every GEMM/ALU writes or
the micro-ops it runs, so they are tracked during a run in ``pynq`` fidelity mode
(:mod:`vta.sim.hardware`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vta.errors import ProgramError
from vta.isa import ALU_MUL, ALU_SHR, MEM_ACC_8BIT, MEM_UOP, MEM_WGT, MODULES, OP_ALU, OP_LOAD, DecodedStream
from vta.sim.checks import Index, as_index, describe

if TYPE_CHECKING:
    from vta.sim.vector import Vector, VectorRun

__all__ = ["KINDS", "SHIFT_RANGE", "Divergence", "ShadowTracker", "lint_vector", "static_divergences"]

SHIFT_RANGE = (-15, 15)  # portable SHR amounts: sim, HLS (5-bit signed) and Chisel agree (spec §3.4)
KINDS = {
    "alu_mul": "ALU MUL is not implemented by the Xilinx HLS design: the destination is left unchanged",
    "acc_8bit": "LOAD ACC_8BIT is not implemented by the Xilinx HLS design: nothing is loaded",
    "wgt_pad": "the HLS WGT load ignores padding: rows are packed back to back at x_size per row",
    "uop_2d": "the HLS UOP load copies only x_size micro-ops (y_size, x_stride and pads are ignored)",
    "shift_range": "SHR amount outside -15..15: HLS uses the low 5 bits as a signed amount",
    "store_unshadowed": "STORE of accumulator entries whose 8-bit output shadow was not written by their last "
                        "writer: the hardware stores stale or different bytes",
    "fetch_hang": "a command queue fills with instructions that wait on ones fetch cannot reach: the hardware hangs",
    "gemm_pipeline": "GEMM micro-op writes an accumulator entry that one of the two micro-ops before it wrote: the "
                     "HLS loop is pipelined at II=1 with no dependence declared on the accumulator, so an update "
                     "can be lost",
    "uop_unloaded": "GEMM/ALU runs micro-ops that its LOAD UOP writes in the reference but the bitstream does not "
                    "(the HLS UOP load copies only x_size micro-ops): on the bitstream they hold whatever the "
                    "micro-op SRAM held before (what earlier programs left; zero on a fresh simulated device)",
}
# Last writer of an accumulator entry, as far as the output shadow is concerned.
SHADOWED, LOAD_ACC, RESET_GEMM, MUL = 0, 1, 2, 3
_WRITER = {LOAD_ACC: "LOAD ACC", RESET_GEMM: "a reset GEMM", MUL: "ALU MUL"}


@dataclass(frozen=True)
class Divergence:
    """One instruction whose result on the Pynq bitstream differs from the reference simulator."""

    index: int
    module: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "module": self.module, "kind": self.kind, "message": self.message}


def _uops(s: DecodedStream) -> np.ndarray:
    g = s.gemm
    return g["iter_out"] * g["iter_in"] * np.maximum(g["uop_end"] - g["uop_bgn"], 0)


def static_divergences(s: DecodedStream) -> list[Divergence]:
    """The divergences visible in the instruction words alone, in stream order."""
    m, alu, op = s.mem, s.alu, s.opcode
    load = (op == OP_LOAD) & (m["x_size"] > 0)
    pads = (m["x_pad_0"] | m["x_pad_1"] | m["y_pad_0"] | m["y_pad_1"]) > 0
    runs_alu = (op == OP_ALU) & (_uops(s) > 0)
    lo, hi = SHIFT_RANGE
    masks = {
        "alu_mul": runs_alu & (alu["alu_opcode"] == ALU_MUL),
        "acc_8bit": load & (m["memory_type"] == MEM_ACC_8BIT),
        "wgt_pad": load & (m["memory_type"] == MEM_WGT) & pads,
        "uop_2d": load & (m["memory_type"] == MEM_UOP) & ((m["y_size"] > 1) | pads),
        "shift_range": runs_alu & (alu["alu_opcode"] == ALU_SHR) & (alu["use_imm"] > 0)
                       & ((alu["imm"] < lo) | (alu["imm"] > hi)),
    }
    out = []
    for kind, mask in masks.items():
        for i in np.flatnonzero(mask).tolist():
            detail = f" (immediate {int(alu['imm'][i])})" if kind == "shift_range" else ""
            out.append(Divergence(i, MODULES[int(s.module[i])], kind, KINDS[kind] + detail))
    return sorted(out, key=lambda d: d.index)


class ShadowTracker:
    """Which instruction last wrote each accumulator entry and whether it also wrote the 8-bit shadow."""

    def __init__(self, depth: int, uop_depth: int):
        self.kind = np.zeros(depth, dtype=np.int8)
        self.writer = np.full(depth, -1, dtype=np.int64)
        # Per micro-op entry: the LOAD UOP that writes it in the reference but not on the bitstream (-1: none).
        self.uop_gap = np.full(uop_depth, -1, dtype=np.int64)
        self.unloaded: dict[int, np.ndarray] = {}  # GEMM/ALU index -> the gap micro-ops it ran
        self.found: list[Divergence] = []
        self._seen: set[tuple[int, str]] = set()

    def add(self, d: Divergence) -> None:
        """Record a divergence once per instruction and kind."""
        if (d.index, d.kind) not in self._seen:
            self._seen.add((d.index, d.kind))
            self.found.append(d)

    def note(self, index: int, module: str, kind: str, detail: str = "") -> None:
        self.add(Divergence(index, module, kind, KINDS[kind] + detail))

    def wrote(self, index: int, idx: Index, how: int) -> None:
        self.kind[idx] = how
        self.writer[idx] = index

    def uop_load(self, index: int, lo: int, copied: int, hi: int) -> None:
        """A LOAD UOP writes entries lo..hi-1 in the reference, only lo..lo+copied-1 on the bitstream."""
        self.uop_gap[lo:lo + copied] = -1
        self.uop_gap[lo + copied:hi] = index

    def uops_run(self, index: int, lo: int, hi: int) -> None:
        """A GEMM/ALU runs micro-ops lo..hi-1: note those the bitstream never loaded."""
        gap = np.flatnonzero(self.uop_gap[lo:hi] >= 0)
        if len(gap):
            self.unloaded[index] = lo + gap
            ups, loads = self._unloaded(index)
            self.note(index, "compute", "uop_unloaded", f" ({ups}, left out by {loads})")

    def _unloaded(self, index: int) -> tuple[str, str]:
        """The micro-ops GEMM/ALU ``index`` ran that the bitstream did not load, and the LOAD UOPs that skipped them."""
        ups = self.unloaded[index]
        loads = sorted({int(i) for i in self.uop_gap[ups]})
        return (f"micro-op {int(ups[0])}" if len(ups) == 1 else f"micro-ops {describe(as_index(ups))}",
                f"LOAD UOP instruction{'s' if len(loads) > 1 else ''} {', '.join(map(str, loads))}")

    def race_cause(self, compute: int) -> str:
        """Why a race found only with the bitstream's semantics is absent from the reference execution."""
        if compute not in self.unloaded:
            return (f"the reference execution has no such race: on the bitstream instruction {compute} runs other "
                    "micro-ops than in the reference (see the uop_2d divergences)")
        ups, loads = self._unloaded(compute)
        one = len(self.unloaded[compute]) == 1
        it, holds = ("it", "it holds") if one else ("them", "they hold")
        return (f"the reference execution has no such race: {loads} writes {ups} in the reference but not on the "
                f"bitstream, which copies only x_size micro-ops; instruction {compute} runs {it}, and on the "
                f"bitstream {holds} whatever the micro-op SRAM held before the run (what earlier programs left; "
                "zero on a fresh simulated device), so the instruction touches other entries than in the reference")

    def store(self, index: int, lo: int, hi: int) -> None:
        """A STORE reads entries lo..hi-1 through the shadow."""
        bad = np.flatnonzero(self.kind[lo:hi])
        if len(bad):
            e = lo + int(bad[0])
            self.note(index, "store", "store_unshadowed",
                      f" (entry {e} was last written by {_WRITER[int(self.kind[e])]}, instruction "
                      f"{int(self.writer[e])}; {len(bad)} such entries)")

    def pipeline(self, index: int, acc: np.ndarray) -> None:
        """Accumulating GEMM destinations in execution order: the same entry within three micro-ops (spec §3.3)."""
        for gap in (1, 2):
            hit = np.flatnonzero(acc[gap:] == acc[:-gap]) if len(acc) > gap else ()
            if len(hit):
                k = int(hit[0]) + gap
                self.note(index, "compute", "gemm_pipeline",
                          f" (micro-op execution {k} writes entry {int(acc[k])}, written {gap} before)")
                return

    def shifts(self, index: int, amounts: np.ndarray) -> None:
        """Two-operand SHR amounts read from the accumulator at run time."""
        lo, hi = SHIFT_RANGE
        bad = (amounts < lo) | (amounts > hi)
        if bad.any():
            self.note(index, "compute", "shift_range", f" (amount {int(amounts[bad].flat[0])} read from ACC)")


def lint_vector(vector: Vector, hw_exec: bool = False) -> VectorRun:
    """Run a golden vector in a fresh device with ``fidelity="pynq"``; divergences are on ``result``."""
    from vta.sim.device import SimDevice
    from vta.sim.vector import VectorRun

    dev = SimDevice()
    buf = dev.dram.alloc_at(vector.phys_base, len(vector.mem_in))
    buf.data[:] = vector.mem_in
    try:
        result = dev.run(vector.insn_phys, vector.insn_count, fidelity="pynq", hw_exec=hw_exec)
    except ProgramError as e:
        return VectorRun(vector, None, e, buf.data)
    return VectorRun(vector, result, None, buf.data)
