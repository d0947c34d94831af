"""LOAD: 2-D strided DMA from DRAM into an SRAM with zero padding (spec §3.2).

LOAD INP/WGT run on the load module, LOAD UOP/ACC/ACC_8BIT on the compute module; the
data movement is the same and lives here.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from vta.config import Environment
from vta.errors import DramOutOfBoundsError
from vta.isa import MEM_ACC, MEM_ACC_8BIT, MEM_INP, MEM_NAMES, MEM_UOP, MEM_WGT, MODULES
from vta.sim.checks import AccessTracker, DramSpan, dram_oob
from vta.sim.dram import Dram
from vta.sim.sram import Sram

__all__ = ["run_load"]

_BUFFER = {MEM_UOP: "uop", MEM_INP: "inp", MEM_WGT: "wgt", MEM_ACC: "acc", MEM_ACC_8BIT: "acc"}
_COUNTER = {MEM_UOP: "uop_load_nbytes", MEM_INP: "inp_load_nbytes", MEM_WGT: "wgt_load_nbytes",
            MEM_ACC: "acc_load_nbytes", MEM_ACC_8BIT: "acc_load_nbytes"}


def dram_elem_bytes(env: Environment, memory_type: int) -> int:
    return {MEM_UOP: env.UOP_ELEM_BYTES, MEM_INP: env.INP_ELEM_BYTES, MEM_WGT: env.WGT_ELEM_BYTES,
            MEM_ACC: env.ACC_ELEM_BYTES, MEM_ACC_8BIT: env.ACC_ELEM_BYTES // 4}[memory_type]


def _convert(env: Environment, memory_type: int, rows: np.ndarray, y: int, x: int) -> np.ndarray:
    """DRAM bytes (y, x*E) -> the SRAM entry representation of :class:`Sram`."""
    b, bi, bo = env.BATCH, env.BLOCK_IN, env.BLOCK_OUT
    if memory_type == MEM_UOP:
        return rows.copy().view("<u4").reshape(y, x)
    if memory_type == MEM_INP:
        return rows.view(np.int8).reshape(y, x, b, bi).astype(np.float32)
    if memory_type == MEM_WGT:
        return rows.view(np.int8).reshape(y, x, bo, bi).transpose(0, 1, 3, 2).astype(np.float32)
    if memory_type == MEM_ACC:
        return rows.copy().view("<i4").reshape(y, x, b, bo)
    return rows.view(np.int8).reshape(y, x, b, bo).astype(np.int32)  # ACC_8BIT sign-extends


def run_load(f: dict[str, int], i: int, env: Environment, dram: Dram, sram: Sram, track: AccessTracker,
             counters: dict[str, int], execute: bool) -> None:
    """Execute (or, with ``execute=False``, only check) the LOAD instruction with fields ``f``."""
    if f["x_size"] == 0:
        return  # a pure dependency carrier: every other field is ignored
    mt, y, x = f["memory_type"], f["y_size"], f["x_size"]
    buf, elem = _BUFFER[mt], dram_elem_bytes(env, mt)
    xt, yt = f["x_pad_0"] + x + f["x_pad_1"], f["y_pad_0"] + y + f["y_pad_1"]
    lo, hi = f["sram_base"], f["sram_base"] + xt * yt
    what = f"LOAD {MEM_NAMES[mt]}"
    module = MODULES[int(track.sched.module[i])]
    track.check_range(buf, lo, hi, i, what)
    span = DramSpan(f["dram_base"] * elem, y, x * elem, f["x_stride"] * elem)
    if mt == MEM_ACC_8BIT and f["dram_base"] * env.ACC_ELEM_BYTES >= 1 << 32:
        raise DramOutOfBoundsError(
            f"LOAD ACC_8BIT at 0x{span.start:x}: the reference computes ACC_8BIT addresses in 32 bits "
            "(dram_base*64/4), which wraps at 1 GiB and would read the wrong memory", index=i, module=module)
    found = dram.find(span.start, span.end - span.start) if y else None
    if y and found is None:
        raise dram_oob(span, i, module, what)
    if y:
        track.dram_read(span, i, what)
    counters[_COUNTER[mt]] += x * y * (env.ACC_ELEM_BYTES if mt == MEM_ACC_8BIT else elem)
    if buf == "uop":
        track.uop_written[lo:hi] = True
    else:
        track.write(buf, slice(lo, hi), i, what)
    if not execute and buf != "uop":
        return  # uops are state the checks need, so they always load (like the reference's skip mode)
    target = {"uop": sram.uop, "inp": sram.inp, "wgt": sram.wgt_t, "acc": sram.acc}[buf]
    block = target[lo:hi].reshape(yt, xt, *target.shape[1:])
    block[...] = 0
    if y:
        data, offset = found
        rows = as_strided(data.data[offset:], shape=(y, x * elem), strides=(f["x_stride"] * elem, 1))
        block[f["y_pad_0"]:f["y_pad_0"] + y, f["x_pad_0"]:f["x_pad_0"] + x] = _convert(env, mt, rows, y, x)
