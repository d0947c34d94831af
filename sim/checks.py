"""Race and uninitialised-SRAM analysis done alongside execution.

Each SRAM has exactly one writing module and one reading module on the other side of a
token queue: INP/WGT are written by load and read by compute, ACC is written by compute
and read by store. So per entry we keep the sequence number of its last foreign-relevant
write and read, and an access is ordered when the accessing instruction's vector clock
covers them (see :mod:`vta.sim.scheduler`). DRAM conflicts (STORE writes against LOAD
reads) are static and checked once per program in :mod:`vta.sim.program`. This finds every
race of the program, whatever the interleaving, at the cost of a few numpy max() calls per
instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vta.errors import DramOutOfBoundsError, RaceError, SramOutOfBoundsError, UninitSramError
from vta.isa import COMPUTE_MODULE, LOAD_MODULE, MODULES, STORE_MODULE
from vta.sim.scheduler import Schedule

__all__ = ["AccessTracker", "DramSpan", "Index", "as_index", "describe", "dram_oob"]

Index = slice | np.ndarray

# Buffer -> (module that writes it, module on the other side that reads it).
SIDES = {"inp": (LOAD_MODULE, COMPUTE_MODULE), "wgt": (LOAD_MODULE, COMPUTE_MODULE),
         "acc": (COMPUTE_MODULE, STORE_MODULE)}


def as_index(sorted_unique: np.ndarray) -> Index:
    """A slice when the entries are one contiguous run (much cheaper to index), else the array."""
    if len(sorted_unique) and int(sorted_unique[-1]) - int(sorted_unique[0]) + 1 == len(sorted_unique):
        return slice(int(sorted_unique[0]), int(sorted_unique[-1]) + 1)
    return sorted_unique


def describe(idx: Index) -> str:
    if isinstance(idx, slice):
        return f"{idx.start}..{idx.stop - 1}"
    return f"{int(idx[0])}..{int(idx[-1])} ({len(idx)} entries)" if len(idx) > 1 else str(int(idx[0]))


@dataclass(frozen=True)
class DramSpan:
    """Bytes touched by one 2-D DMA: ``rows`` rows of ``row_bytes`` every ``pitch`` bytes."""

    start: int
    rows: int
    row_bytes: int
    pitch: int

    @property
    def end(self) -> int:
        return self.start + (self.rows - 1) * self.pitch + self.row_bytes if self.rows else self.start

    def overlaps(self, other: DramSpan) -> bool:
        if self.rows == 0 or other.rows == 0 or self.end <= other.start or other.end <= self.start:
            return False
        a0 = self.start + np.arange(self.rows, dtype=np.int64) * self.pitch
        b0 = other.start + np.arange(other.rows, dtype=np.int64) * other.pitch
        # rows of each span are increasing and disjoint (pitch >= row_bytes), so compare neighbours
        pos = np.searchsorted(b0, a0, side="right") - 1
        hit_prev = (pos >= 0) & (b0[np.maximum(pos, 0)] + other.row_bytes > a0)
        nxt = np.minimum(pos + 1, other.rows - 1)
        hit_next = (pos + 1 < other.rows) & (b0[nxt] < a0 + self.row_bytes)
        return bool((hit_prev | hit_next).any())


class AccessTracker:
    """Per-run bookkeeping of who wrote and read every SRAM entry and DRAM byte range."""

    def __init__(self, depths: dict[str, int], sched: Schedule, carried: dict[str, np.ndarray] | None = None):
        self.sched = sched
        self.depths = depths
        self.uop_written = np.zeros(depths["uop"], dtype=bool)  # loaded in this run or carried over
        self.uop_loaded = np.zeros(depths["uop"], dtype=bool)  # loaded in this run
        self.last_write = {b: np.zeros(depths[b], dtype=np.int64) for b in SIDES}
        # Entries an earlier run left in SRAM, when the caller accepts them (-1: written before this run).
        self.carried = carried is not None
        self.used_carry = False
        if carried is not None:
            self.uop_written |= carried["uop"]
            for b in SIDES:
                self.last_write[b][carried[b]] = -1
        self.last_read = {b: np.zeros(depths[b], dtype=np.int64) for b in SIDES}
        self._by_seq = [np.flatnonzero(sched.module == m) for m in range(3)]
        # Reads of unwritten memory are reported after races and termination defects (the order the
        # golden vectors classify by), so the first one is kept here instead of raised at once.
        self.uninit: UninitSramError | None = None
        # Set for a pass with the bitstream's semantics (hw_exec) after the reference pass found no race: given
        # the race's GEMM/ALU, says why the reference execution has no such race.
        self.hw_cause: Callable[[int], str] | None = None

    def _note_uninit(self, error: UninitSramError) -> None:
        if self.uninit is None:
            self.uninit = error

    def _insn(self, module: int, seq: int) -> int:
        return int(self._by_seq[module][seq - 1])

    # --- bounds ---------------------------------------------------------------------------
    def check_range(self, buf: str, lo: int, hi: int, i: int, what: str) -> None:
        if hi > self.depths[buf]:
            raise SramOutOfBoundsError(
                f"{what} covers {buf.upper()} entries {lo}..{hi - 1}, past the depth {self.depths[buf]}",
                index=i, module=MODULES[int(self.sched.module[i])])

    # --- SRAM -----------------------------------------------------------------------------
    def read(self, buf: str, idx: Index, i: int, what: str) -> None:
        """Instruction i reads ``buf[idx]``: it must have been written and, across modules, ordered."""
        lw = self.last_write[buf][idx]
        if self.carried and not self.used_carry:
            self.used_carry = bool((lw < 0).any())
        if not lw.all():
            where = idx if isinstance(idx, np.ndarray) else np.arange(idx.start, idx.stop)
            first = int(where[np.flatnonzero(lw == 0)[0]])
            self._note_uninit(UninitSramError(
                f"{what} reads {buf.upper()} entry {first}, which nothing wrote before it in this run",
                index=i, module=MODULES[int(self.sched.module[i])]))
        writer, reader = SIDES[buf]
        if self.sched.module[i] == reader:
            seq = int(lw.max())
            if seq > self.sched.vc[i, writer]:
                j = self._insn(writer, seq)
                raise self._race(f"{what} reads {buf.upper()} entries {describe(idx)} written by instruction {j} "
                                 f"({MODULES[writer]})", i, reader, i if reader == COMPUTE_MODULE else j)
            self.last_read[buf][idx] = self.sched.seq[i]

    def write(self, buf: str, idx: Index, i: int, what: str) -> None:
        """Instruction i writes ``buf[idx]``: earlier reads from the other module must be ordered before it."""
        writer, reader = SIDES[buf]
        lr = self.last_read[buf][idx]
        seq = int(lr.max()) if lr.size else 0
        if seq > self.sched.vc[i, reader]:
            j = self._insn(reader, seq)
            raise self._race(f"{what} overwrites {buf.upper()} entries {describe(idx)} that instruction {j} "
                             f"({MODULES[reader]}) reads,", i, writer, i if writer == COMPUTE_MODULE else j)
        self.last_write[buf][idx] = self.sched.seq[i]

    def _race(self, what: str, i: int, module: int, compute: int) -> RaceError:
        """The race found at instruction i; ``compute`` is its GEMM/ALU side."""
        text = f"{what} with no dependency token ordering the two"
        if self.hw_cause is not None:
            text = (f"on the Pynq bitstream {text}, so what the bitstream computes depends on timing; "
                    f"{self.hw_cause(compute)}")
        return RaceError(text, index=i, module=MODULES[module])

    def load_uops(self, lo: int, hi: int) -> None:
        self.uop_written[lo:hi] = True
        self.uop_loaded[lo:hi] = True

    def written(self) -> dict[str, np.ndarray]:
        """Entries this run (or, when carried, an earlier one) left written, per buffer."""
        return {"uop": self.uop_written.copy(), **{b: lw != 0 for b, lw in self.last_write.items()}}

    def read_uops(self, lo: int, hi: int, i: int, what: str) -> None:
        self.check_range("uop", lo, hi, i, what)
        if self.carried and not self.used_carry:
            self.used_carry = not self.uop_loaded[lo:hi].all()
        if not self.uop_written[lo:hi].all():
            first = lo + int(np.flatnonzero(~self.uop_written[lo:hi])[0])
            self._note_uninit(UninitSramError(
                f"{what} reads micro-op {first}, which no LOAD UOP wrote before it in this run", index=i,
                module="compute"))


def dram_oob(span: DramSpan, i: int | None, module: str, what: str) -> DramOutOfBoundsError:
    return DramOutOfBoundsError(
        f"{what} touches DRAM bytes 0x{span.start:x}..0x{span.end - 1:x}, which are not inside one live buffer of "
        "this program", index=i, module=module)
