"""LOAD: 2-D strided DMA from DRAM into an SRAM with zero padding (spec §3.2).

LOAD INP/WGT run on the load module, LOAD UOP/ACC/ACC_8BIT on the compute module; the data
movement is the same and lives here. ``load_step`` returns the data movement as a callable
so a verified program can replay it without re-checking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from vta.config import Environment
from vta.isa import MEM_ACC, MEM_INP, MEM_UOP, MEM_WGT
from vta.sim.dram import DramBuffer
from vta.sim.program import Dma
from vta.sim.sram import Sram

__all__ = ["dram_rows", "load_step"]

Step = Callable[[list | None], None]


def dram_rows(found: tuple[DramBuffer, int], d: Dma, writeable: bool = False) -> np.ndarray:
    """The (y, x*E) byte rows of a DMA's DRAM side, as a view of the buffer."""
    buf, offset = found
    sp = d.span
    if sp.pitch == sp.row_bytes or sp.rows == 1:
        return buf.data[offset:offset + sp.rows * sp.row_bytes].reshape(sp.rows, sp.row_bytes)
    return as_strided(buf.data[offset:], shape=(sp.rows, sp.row_bytes), strides=(sp.pitch, 1), writeable=writeable)


def _converter(env: Environment, d: Dma) -> Callable[[np.ndarray], np.ndarray]:
    """DRAM bytes (y, x*E) -> the SRAM entry representation of :class:`Sram`."""
    b, bi, bo, y, x = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT, d.y, d.x
    mt = d.memory_type
    if mt == MEM_UOP:
        return lambda rows: rows.view("<u4").reshape(y, x)
    if mt == MEM_INP:
        return lambda rows: rows.view(np.int8).reshape(y, x, b, bi)
    if mt == MEM_WGT:
        return lambda rows: rows.view(np.int8).reshape(y, x, bo, bi).transpose(0, 1, 3, 2)
    if mt == MEM_ACC:
        return lambda rows: rows.view("<i4").reshape(y, x, b, bo)
    return lambda rows: rows.view(np.int8).reshape(y, x, b, bo)  # ACC_8BIT: sign-extended on assignment


def load_step(d: Dma, found: tuple[DramBuffer, int] | None, env: Environment, sram: Sram) -> Step:
    """The data movement of LOAD ``d``; bounds were checked when ``d`` and ``found`` were made."""
    target = {"uop": sram.uop, "inp": sram.inp, "wgt": sram.wgt_t, "acc": sram.acc}[d.buf]
    block = target[d.sram_lo:d.sram_hi].reshape(d.y_total, d.x_total, *target.shape[1:])
    padded = d.y_total != d.y or d.x_total != d.x
    if found is None:
        return lambda undo: block.fill(0)  # y_size == 0: only the pad rows are written
    inner = block[d.y_pad_0:d.y_pad_0 + d.y, d.x_pad_0:d.x_pad_0 + d.x]
    rows = dram_rows(found, d)
    convert = _converter(env, d)

    def step(undo: list | None) -> None:
        if padded:
            block.fill(0)
        inner[...] = convert(rows)

    return step
