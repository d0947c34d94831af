"""Static analysis of an instruction stream, done once per distinct stream and cached.

Everything that depends only on the instruction words lives here: field checks, the token
schedule, SRAM ranges of every DMA, and DRAM races between STOREs and LOADs (both sides are
fixed by the words, so all pairs are compared at once with numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.config import Environment
from vta.errors import DramOutOfBoundsError, RaceError, SramOutOfBoundsError
from vta.isa import (
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_NAMES,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    MODULES,
    OP_LOAD,
    OP_STORE,
    STORE_MODULE,
    DecodedStream,
    get_isa,
)
from vta.sim.checks import DramSpan
from vta.sim.fetch import check_fields
from vta.sim.scheduler import Schedule, schedule

__all__ = ["Dma", "Prepared", "prepare"]

_BUFFER = {MEM_UOP: "uop", MEM_INP: "inp", MEM_WGT: "wgt", MEM_ACC: "acc", MEM_ACC_8BIT: "acc"}
_COUNTER = {MEM_UOP: "uop_load_nbytes", MEM_INP: "inp_load_nbytes", MEM_WGT: "wgt_load_nbytes",
            MEM_ACC: "acc_load_nbytes", MEM_ACC_8BIT: "acc_load_nbytes"}


@dataclass(frozen=True)
class Dma:
    """One LOAD or STORE that moves data: its SRAM block, DRAM span and geometry."""

    index: int
    is_store: bool
    memory_type: int
    buf: str
    sram_lo: int
    sram_hi: int
    span: DramSpan
    y: int
    x: int
    y_pad_0: int
    x_pad_0: int
    y_total: int
    x_total: int
    counter: str
    nbytes: int

    @property
    def what(self) -> str:
        return "STORE" if self.is_store else f"LOAD {MEM_NAMES[self.memory_type]}"


@dataclass
class Prepared:
    stream: DecodedStream
    sched: Schedule
    fields: list[dict[str, int]]
    dma: dict[int, Dma]
    dram_race: RaceError | None
    uop_spans: tuple[DramSpan, ...]  # DRAM read by LOAD UOPs: the state the data checks depend on
    replayable: bool  # False when a STORE may write what a LOAD UOP reads
    replay: object = None  # the last verified run, set by the device


def _dma(env: Environment, i: int, f: dict[str, int], depths: dict[str, int], module: str) -> Dma:
    y, x = f["y_size"], f["x_size"]
    sizes = get_isa(env).elem_bytes
    if f["opcode"] == OP_STORE:
        elem = sizes[MEM_OUT]
        d = Dma(i, True, f["memory_type"], "acc", f["sram_base"], f["sram_base"] + x * y,
                DramSpan(f["dram_base"] * elem, y, x * elem, f["x_stride"] * elem), y, x, 0, 0, y, x,
                "out_store_nbytes", x * y * elem)
    else:
        mt = f["memory_type"]
        elem = sizes[mt]
        xt, yt = f["x_pad_0"] + x + f["x_pad_1"], f["y_pad_0"] + y + f["y_pad_1"]
        counted = sizes[MEM_ACC] if mt == MEM_ACC_8BIT else elem  # the reference counts ACC_8BIT as 64 B
        d = Dma(i, False, mt, _BUFFER[mt], f["sram_base"], f["sram_base"] + xt * yt,
                DramSpan(f["dram_base"] * elem, y, x * elem, f["x_stride"] * elem), y, x, f["y_pad_0"],
                f["x_pad_0"], yt, xt, _COUNTER[mt], x * y * counted)
        if mt == MEM_ACC_8BIT and f["dram_base"] * sizes[MEM_ACC] >= 1 << 32:
            raise DramOutOfBoundsError(
                f"LOAD ACC_8BIT at 0x{d.span.start:x}: the reference computes ACC_8BIT addresses in 32 bits "
                "(dram_base*64/4), which wraps at 1 GiB and would read the wrong memory", index=i, module=module)
    if d.sram_hi > depths[d.buf]:
        raise SramOutOfBoundsError(
            f"{d.what} covers {d.buf.upper()} entries {d.sram_lo}..{d.sram_hi - 1}, past the depth {depths[d.buf]}",
            index=i, module=module)
    return d


def prepare(stream: DecodedStream, depths: dict[str, int]) -> Prepared:
    """Check and schedule a stream; raises the first static ProgramError."""
    check_fields(stream)
    sched = schedule(stream)
    env = stream.env
    mem = {k: v.tolist() for k, v in stream.mem.items()}
    loop = {k: v.tolist() for k, v in stream.gemm.items()}
    alu = {k: v.tolist() for k, v in stream.alu.items()}
    opcode = stream.opcode.tolist()
    fields = []
    for i, op in enumerate(opcode):
        src = mem if op in (OP_LOAD, OP_STORE) else alu if op == 4 else loop
        fields.append({k: v[i] for k, v in src.items()})
    dma = {}
    for i in sched.order.tolist():
        f = fields[i]
        if opcode[i] in (OP_LOAD, OP_STORE) and f["x_size"] > 0:
            dma[i] = _dma(env, i, f, depths, MODULES[int(stream.module[i])])
    uop_spans = tuple(d.span for d in dma.values() if d.memory_type == MEM_UOP and not d.is_store and d.y)
    race, replayable = _dram_races(dma, sched, uop_spans)
    return Prepared(stream, sched, fields, dma, race, uop_spans, replayable)


def _dram_races(dma: dict[int, Dma], sched: Schedule, uop_spans: tuple[DramSpan, ...]) -> tuple[RaceError | None, bool]:
    """First STORE/LOAD pair touching the same DRAM bytes with no token ordering them, if any."""
    stores = [d for d in dma.values() if d.is_store and d.y]
    loads = [d for d in dma.values() if not d.is_store and d.y]
    replayable = not any(s.span.overlaps(u) for s in stores for u in uop_spans)
    if not stores or not loads:
        return None, replayable
    si = np.array([d.index for d in stores])
    li = np.array([d.index for d in loads])
    s_lo, s_hi = np.array([d.span.start for d in stores]), np.array([d.span.end for d in stores])
    l_lo, l_hi = np.array([d.span.start for d in loads]), np.array([d.span.end for d in loads])
    seq, vc, mod = sched.seq, sched.vc, sched.module
    store_first = seq[si][:, None] <= vc[li, STORE_MODULE][None, :]
    load_first = seq[li][None, :] <= vc[si][:, mod[li]]
    cand = ~store_first & ~load_first & (s_lo[:, None] < l_hi[None, :]) & (l_lo[None, :] < s_hi[:, None])
    for a, b in zip(*np.nonzero(cand)):
        s, ld = stores[a], loads[b]
        if s.span.overlaps(ld.span):
            return RaceError(
                f"STORE (instruction {s.index}) writes DRAM bytes that {ld.what} (instruction {ld.index}, "
                f"{MODULES[int(mod[ld.index])]}) reads, with no dependency token ordering the two",
                index=s.index, module="store"), replayable
    return None, replayable
