"""The simulated VTA device: DRAM, the four SRAMs and the fetch/load/compute/store modules.

A run decodes and checks the whole stream, orders it by dependency tokens (refusing
deadlocks and early FINISHes up front), then executes instruction by instruction with the
race, uninitialised-read and bounds checks interleaved. A refused program raises the
ProgramError subclass naming the defect and leaves DRAM as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vta.config import Environment, get_env
from vta.errors import ProgramError
from vta.isa import OP_ALU, OP_FINISH, OP_GEMM, OP_LOAD, OP_STORE, DecodedStream
from vta.sim.checks import AccessTracker, DramSpan, dram_oob
from vta.sim.compute import PlanCache, run_alu, run_gemm
from vta.sim.dram import Dram
from vta.sim.fetch import check_fields
from vta.sim.load import run_load
from vta.sim.scheduler import Schedule, schedule
from vta.sim.sram import Sram
from vta.sim.store import UndoLog, rollback, run_store

__all__ = ["SimDevice", "RunResult", "COUNTER_NAMES"]

COUNTER_NAMES = ("inp_load_nbytes", "wgt_load_nbytes", "acc_load_nbytes", "uop_load_nbytes",
                 "out_store_nbytes", "gemm_counter", "alu_counter")
_U64 = (1 << 64) - 1


@dataclass
class RunResult:
    """What one run did: the reference's seven counters, the instruction order taken, the stream."""

    counters: dict[str, int]
    schedule: Schedule
    stream: DecodedStream
    executed: bool = True
    extra: dict[str, object] = field(default_factory=dict)


class SimDevice:
    """A bit-exact functional model of the VTA device (reference ``sim_driver.cc`` semantics).

    Example
    -------
    >>> dev = SimDevice()
    >>> buf = dev.dram.alloc(4096)          # then write instructions into buf.view() and
    >>> # dev.run(buf.phys_addr, count)     # run them
    """

    def __init__(self, env: Environment | None = None, dram: Dram | None = None):
        self.env = env or get_env()
        self.dram = dram if dram is not None else Dram()
        self.sram = Sram(self.env)
        self.plans = PlanCache(self.env)
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)

    def clear_counters(self) -> None:
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)

    def read_stream(self, insn_phys: int, insn_count: int) -> DecodedStream:
        span = DramSpan(insn_phys, 1, insn_count * 16, insn_count * 16)
        found = self.dram.find(insn_phys, insn_count * 16) if insn_count else None
        if insn_count and found is None:
            raise dram_oob(span, None, "fetch", f"fetching {insn_count} instruction(s)")
        data = found[0].data[found[1]:found[1] + insn_count * 16] if found else np.zeros(0, np.uint8)
        return DecodedStream(data, self.env)

    def run(self, insn_phys: int, insn_count: int, *, execute: bool = True) -> RunResult:
        """Run ``insn_count`` instructions at physical address ``insn_phys`` until FINISH.

        With ``execute=False`` every check runs but no data moves except micro-op loads
        (the program verifier). Raises a ProgramError subclass for a bad program.
        """
        stream = self.read_stream(insn_phys, insn_count)
        check_fields(stream)
        sched = schedule(stream)
        counters = dict.fromkeys(COUNTER_NAMES, 0)
        undo: UndoLog = []
        try:
            track = self._execute(stream, sched, counters, execute, undo)
            sched.check()
            if track.uninit is not None:
                raise track.uninit
        except ProgramError:
            rollback(undo)
            raise
        for k, v in counters.items():
            self.counters[k] = (self.counters[k] + v) & _U64
        return RunResult({k: v & _U64 for k, v in counters.items()}, sched, stream, execute)

    def _execute(self, stream: DecodedStream, sched: Schedule, counters: dict[str, int], execute: bool,
                 undo: UndoLog) -> AccessTracker:
        env, sram, dram = self.env, self.sram, self.dram
        track = AccessTracker(sram.depths, sched)
        opcode = stream.opcode.tolist()
        mem = {k: v.tolist() for k, v in stream.mem.items()}
        loop = {k: v.tolist() for k, v in stream.gemm.items()}
        alu = {k: v.tolist() for k, v in stream.alu.items()}
        words = stream.words.tolist()
        for i in sched.order.tolist():
            op = opcode[i]
            if op == OP_LOAD:
                run_load({k: v[i] for k, v in mem.items()}, i, env, dram, sram, track, counters, execute)
            elif op == OP_STORE:
                run_store({k: v[i] for k, v in mem.items()}, i, env, dram, sram, track, counters, execute, undo)
            elif op == OP_GEMM:
                self._gemm({k: v[i] for k, v in loop.items()}, tuple(words[i]), i, track, counters, execute)
            elif op == OP_ALU:
                self._alu({k: v[i] for k, v in alu.items()}, tuple(words[i]), i, track, counters, execute)
            else:
                assert op == OP_FINISH
        return track

    def _loop_uops(self, f: dict[str, int], i: int, track: AccessTracker, what: str) -> np.ndarray | None:
        if f["iter_out"] == 0 or f["iter_in"] == 0 or f["uop_end"] == f["uop_bgn"]:
            return None
        track.read_uops(f["uop_bgn"], f["uop_end"], i, what)
        return self.sram.uop[f["uop_bgn"]:f["uop_end"]]

    def _gemm(self, f: dict[str, int], words: tuple[int, int], i: int, track: AccessTracker,
              counters: dict[str, int], execute: bool) -> None:
        if not f["reset_reg"]:
            counters["gemm_counter"] += f["iter_out"] * f["iter_in"] * (f["uop_end"] - f["uop_bgn"])
        uops = self._loop_uops(f, i, track, "GEMM")
        if uops is None:
            return
        plan = self.plans.gemm(f, words, uops, i)
        if not plan.reset:
            track.read("inp", plan.inp_set, i, "GEMM")
            track.read("wgt", plan.wgt_set, i, "GEMM")
            track.read("acc", plan.acc_set, i, "GEMM")
        track.write("acc", plan.acc_set, i, "GEMM")
        if execute:
            run_gemm(plan, self.sram)

    def _alu(self, f: dict[str, int], words: tuple[int, int], i: int, track: AccessTracker,
             counters: dict[str, int], execute: bool) -> None:
        counters["alu_counter"] += f["iter_out"] * f["iter_in"] * (f["uop_end"] - f["uop_bgn"])
        uops = self._loop_uops(f, i, track, "ALU")
        if uops is None:
            return
        plan = self.plans.alu(f, words, uops, i)
        track.read("acc", plan.read_set, i, "ALU")
        track.write("acc", plan.write_set, i, "ALU")
        if execute:
            run_alu(plan, f, self.sram)
