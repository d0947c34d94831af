"""Build small instruction streams in a SimDevice's DRAM for tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.isa import MEM_UOP, OP_LOAD, FinishInsn, Insn, MemInsn, encode_stream, get_isa
from vta.sim.device import SimDevice
from vta.sim.dram import DramBuffer


@dataclass
class Program:
    dev: SimDevice
    insns: DramBuffer
    count: int

    def run(self, **kw):
        return self.dev.run(self.insns.phys_addr, self.count, **kw)


def put(dev: SimDevice, data: np.ndarray) -> DramBuffer:
    """Copy an array into a fresh DRAM buffer."""
    raw = np.ascontiguousarray(data).view(np.uint8).ravel()
    buf = dev.dram.alloc(max(len(raw), 1))
    buf.data[:len(raw)] = raw
    return buf


def uop_words(dev: SimDevice, uops: list[tuple[int, int, int]]) -> np.ndarray:
    a = np.array(uops, dtype=np.int64).reshape(-1, 3)
    return get_isa(dev.env).encode_uops(a[:, 0], a[:, 1], a[:, 2])


def load_uops(dev: SimDevice, uops: list[tuple[int, int, int]], sram_base: int = 0, **flags: int) -> MemInsn:
    """A LOAD UOP instruction for ``uops``, their words placed in a new DRAM buffer."""
    buf = put(dev, uop_words(dev, uops))
    return MemInsn(opcode=OP_LOAD, memory_type=MEM_UOP, sram_base=sram_base, dram_base=buf.phys_addr // 4,
                   y_size=1, x_size=len(uops), x_stride=len(uops), **flags)


def program(dev: SimDevice, insns: list[Insn], finish: bool = True) -> Program:
    stream = list(insns) + ([FinishInsn()] if finish else [])
    data = np.frombuffer(encode_stream(stream, dev.env), dtype=np.uint8)
    buf = put(dev, data)
    return Program(dev, buf, len(stream))
