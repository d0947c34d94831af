"""``vta selftest``: a few known programs through the whole driver path, checked against numpy.

The programs are built here from the ISA (no compiler, no vector files), so a board user can
tell a broken installation, a wrong bitstream or a faulty board apart from a compiler problem.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vta.config import Environment, get_env
from vta.driver.buffers import DmaBuffer
from vta.driver.device import BoardDevice
from vta.errors import DeviceError
from vta.isa import (
    ALU_ADD,
    MEM_ACC,
    MEM_INP,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_STORE,
    AluInsn,
    FinishInsn,
    GemmInsn,
    Insn,
    MemInsn,
    encode_stream,
    get_isa,
)

__all__ = ["CheckResult", "selftest"]


@dataclass(frozen=True)
class CheckResult:
    """One program: did it match, and how long the device run took (seconds, median and best)."""

    name: str
    ok: bool
    median_s: float
    best_s: float
    detail: str


class _Program:
    """Buffers of one test program in device memory, and the check of its output."""

    def __init__(self, dev: BoardDevice, env: Environment):
        self.dev, self.env, self.bufs = dev, env, []

    def put(self, data: np.ndarray) -> DmaBuffer:
        raw = np.ascontiguousarray(data).view(np.uint8).ravel()
        buf = self.dev.alloc(max(len(raw), 1))
        buf.array[:len(raw)] = raw
        buf.flush()
        self.bufs.append(buf)
        return buf

    def stream(self, insns: list[Insn]) -> DmaBuffer:
        return self.put(np.frombuffer(encode_stream([*insns, FinishInsn()], self.env), np.uint8))

    def free(self) -> None:
        for buf in self.bufs:
            buf.free()


def _alu_add(p: _Program, rng: np.random.Generator) -> tuple[DmaBuffer, int, Callable[[], str]]:
    """LOAD ACC -> ALU ADD immediate -> STORE: the compute and store modules and their tokens."""
    n, imm = 8, 3
    acc = rng.integers(-1000, 1000, size=(n, 16), dtype=np.int32)
    src, out = p.put(acc), p.put(np.zeros(n * 16, np.int8))
    uops = p.put(get_isa(p.env).encode_uops(np.arange(n), np.arange(n), np.zeros(n, np.int64)))
    insns = [MemInsn(memory_type=MEM_UOP, dram_base=uops.phys_addr // 4, y_size=1, x_size=n, x_stride=n),
             MemInsn(memory_type=MEM_ACC, dram_base=src.phys_addr // 64, y_size=1, x_size=n, x_stride=n),
             AluInsn(alu_opcode=ALU_ADD, use_imm=1, imm=imm, uop_end=n, push_next_dep=1),
             MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, dram_base=out.phys_addr // 16, y_size=1, x_size=n,
                     x_stride=n, pop_prev_dep=1, push_prev_dep=1),
             AluInsn(pop_next_dep=1, iter_out=0)]
    want = (acc + imm).astype(np.int8).ravel()
    return p.stream(insns), len(insns) + 1, lambda: _compare(out, want)


def _gemm(p: _Program, rng: np.random.Generator) -> tuple[DmaBuffer, int, Callable[[], str]]:
    """LOAD INP/WGT (load module) -> GEMM reset + accumulate -> STORE: all four modules."""
    x = rng.integers(-128, 128, size=16, dtype=np.int8)
    w = rng.integers(-128, 128, size=(16, 16), dtype=np.int8)  # [out][in], as in DRAM (spec §2.10)
    inp, wgt, out = p.put(x), p.put(w), p.put(np.zeros(16, np.int8))
    uops = p.put(get_isa(p.env).encode_uops(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)))
    insns = [MemInsn(memory_type=MEM_INP, dram_base=inp.phys_addr // 16, y_size=1, x_size=1, x_stride=1),
             MemInsn(memory_type=MEM_WGT, dram_base=wgt.phys_addr // 256, y_size=1, x_size=1, x_stride=1,
                     push_next_dep=1),
             MemInsn(memory_type=MEM_UOP, dram_base=uops.phys_addr // 4, y_size=1, x_size=1, x_stride=1),
             GemmInsn(reset_reg=1, uop_end=1, pop_prev_dep=1),
             GemmInsn(uop_end=1, push_next_dep=1),
             MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, dram_base=out.phys_addr // 16, y_size=1, x_size=1,
                     x_stride=1, pop_prev_dep=1, push_prev_dep=1),
             AluInsn(pop_next_dep=1, iter_out=0)]
    want = (w.astype(np.int32) @ x.astype(np.int32)).astype(np.int8)
    return p.stream(insns), len(insns) + 1, lambda: _compare(out, want)


def _compare(out: DmaBuffer, want: np.ndarray) -> str:
    out.invalidate()
    got = out.array[:want.nbytes].view(np.int8)
    bad = np.flatnonzero(got != want.view(np.int8))
    return "" if not len(bad) else f"{len(bad)} of {len(got)} output bytes differ (first at {bad[0]})"


PROGRAMS = {"alu_add": _alu_add, "gemm": _gemm}


def selftest(dev: BoardDevice, env: Environment | None = None, repeat: int = 5,
             timeout_s: float = 2.0) -> list[CheckResult]:
    """Run every known program ``repeat`` times on ``dev``; DeviceError/DeviceTimeout propagate."""
    env = env or get_env()
    if repeat < 1:
        raise DeviceError(f"selftest repeat count must be at least 1, got {repeat}")
    rng = np.random.default_rng(2024)
    results = []
    for name, build in PROGRAMS.items():
        prog = _Program(dev, env)
        try:
            insns, count, check = build(prog, rng)
            times, problem = [], ""
            for _ in range(repeat):
                t0 = time.perf_counter()
                dev.run(insns.phys_addr, count, timeout_s)
                times.append(time.perf_counter() - t0)
                problem = problem or check()
            results.append(CheckResult(name, not problem, statistics.median(times), min(times),
                                       problem or f"{count} instructions, output matches numpy"))
        finally:
            prog.free()
    return results
