"""STORE: accumulator entries truncated to their low 8 bits, written to DRAM rows (spec §3.5).

The SRAM side is contiguous and only the DRAM side is strided. In a checked run every write
is logged, so a program refused later in the same run leaves DRAM exactly as it found it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vta.sim.dram import DramBuffer
from vta.sim.load import dram_rows
from vta.sim.program import Dma
from vta.sim.sram import Sram

__all__ = ["rollback", "store_step"]

UndoLog = list[tuple[np.ndarray, np.ndarray]]


def store_step(d: Dma, found: tuple[DramBuffer, int], sram: Sram) -> Callable[[UndoLog | None], None]:
    rows = dram_rows(found, d, writeable=True)
    src = sram.acc[d.sram_lo:d.sram_hi]
    shape = rows.shape

    def step(undo: UndoLog | None) -> None:
        if undo is not None:
            undo.append((rows, rows.copy()))
        rows[...] = src.astype(np.int8).view(np.uint8).reshape(shape)

    return step


def rollback(undo: UndoLog) -> None:
    """Restore the DRAM bytes STOREs overwrote, newest first."""
    for rows, old in reversed(undo):
        rows[...] = old
    undo.clear()
