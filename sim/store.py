"""STORE: accumulator entries truncated to their low 8 bits, written to DRAM rows (spec §3.5).

The SRAM side is contiguous and only the DRAM side is strided. Every write is logged so
that a program refused later in the same run leaves DRAM exactly as it found it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from vta.config import Environment
from vta.sim.checks import AccessTracker, DramSpan, dram_oob
from vta.sim.dram import Dram, DramBuffer
from vta.sim.sram import Sram

__all__ = ["run_store", "UndoLog"]

UndoLog = list[tuple[DramBuffer, int, int, int, np.ndarray]]


def run_store(f: dict[str, int], i: int, env: Environment, dram: Dram, sram: Sram, track: AccessTracker,
              counters: dict[str, int], execute: bool, undo: UndoLog) -> None:
    """Execute (or only check) the STORE instruction with fields ``f``; memory type and pads are pre-checked."""
    if f["x_size"] == 0:
        return
    y, x, elem = f["y_size"], f["x_size"], env.OUT_ELEM_BYTES
    lo, hi = f["sram_base"], f["sram_base"] + x * y
    track.check_range("acc", lo, hi, i, "STORE")
    span = DramSpan(f["dram_base"] * elem, y, x * elem, f["x_stride"] * elem)
    found = dram.find(span.start, span.end - span.start) if y else None
    if y and found is None:
        raise dram_oob(span, i, "store", "STORE")
    if y == 0:
        return
    track.read("acc", slice(lo, hi), i, "STORE")
    track.dram_write(span, i, "STORE")
    counters["out_store_nbytes"] += x * y * elem
    if not execute:
        return
    data, offset = found
    rows = as_strided(data.data[offset:], shape=(y, x * elem), strides=(f["x_stride"] * elem, 1), writeable=True)
    undo.append((data, offset, y, f["x_stride"] * elem, rows.copy()))
    rows[...] = sram.acc[lo:hi].astype(np.int8).view(np.uint8).reshape(y, x * elem)


def rollback(undo: UndoLog) -> None:
    """Restore the DRAM bytes STOREs overwrote, newest first."""
    for data, offset, y, pitch, old in reversed(undo):
        rows = as_strided(data.data[offset:], shape=(y, old.shape[1]), strides=(pitch, 1), writeable=True)
        rows[...] = old
    undo.clear()
