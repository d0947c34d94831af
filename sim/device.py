"""The simulated VTA device: DRAM, the four SRAMs and the fetch/load/compute/store modules.

A run (1) prepares the stream once per distinct stream: decode, field checks, token schedule,
static DMA checks (:mod:`vta.sim.program`); (2) checks every DMA's DRAM range against the
live buffers; (3) executes in schedule order with the data-dependent checks (micro-op
indices, races and reads of unwritten SRAM) interleaved, recording each instruction's data
movement as a step. When the stream, the micro-ops it loads and the DRAM layout are the
same as in the last verified run, (3) replays the recorded steps without re-checking (and a
verify-only run returns at once). A
refused program raises the ProgramError naming the defect and leaves DRAM as it was.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vta.config import Environment, get_env
from vta.errors import ConfigError, ProgramError
from vta.isa import OP_ALU, OP_GEMM, OP_LOAD, OP_STORE, DecodedStream
from vta.sim.checks import AccessTracker, DramSpan, dram_oob
from vta.sim.compute import PlanCache, run_alu, run_gemm
from vta.sim.dram import Dram, DramBuffer
from vta.sim.hardware import PynqFidelity
from vta.sim.lint import Divergence
from vta.sim.load import dram_rows, load_step
from vta.sim.perf import Timing, estimate
from vta.sim.program import Prepared, prepare
from vta.sim.scheduler import Schedule
from vta.sim.sram import Sram
from vta.sim.store import UndoLog, rollback, store_step

__all__ = ["COUNTER_NAMES", "RunResult", "SimDevice"]

COUNTER_NAMES = ("inp_load_nbytes", "wgt_load_nbytes", "acc_load_nbytes", "uop_load_nbytes",
                 "out_store_nbytes", "gemm_counter", "alu_counter")
_U64 = (1 << 64) - 1
Step = Callable[[UndoLog | None], None]


@dataclass
class RunResult:
    """What one run did: the reference's seven counters, the schedule taken, the stream."""

    counters: dict[str, int]
    schedule: Schedule
    stream: DecodedStream
    executed: bool = True
    replayed: bool = False
    divergences: tuple[Divergence, ...] = ()  # fidelity="pynq": what the bitstream does differently

    @functools.cached_property
    def timing(self) -> Timing:
        """The predicted run on the Pynq bitstream (:mod:`vta.sim.perf`), computed on first access."""
        return estimate(self.stream)


@dataclass(frozen=True)
class _Verified:
    generation: int
    uop_bytes: bytes
    steps: tuple[Step, ...] | None  # None when verified without executing
    counters: dict[str, int]
    written: dict[str, np.ndarray]  # SRAM entries the run leaves written


class SimDevice:
    """A bit-exact functional model of the VTA device (reference ``sim_driver.cc`` semantics).

    Example
    -------
    >>> dev = SimDevice()
    >>> buf = dev.dram.alloc(4096)          # write instructions into buf.view(), then
    >>> # dev.run(buf.phys_addr, count)     # run them
    """

    def __init__(self, env: Environment | None = None, dram: Dram | None = None, cache_size: int = 64):
        self.env = env or get_env()
        self.dram = dram if dram is not None else Dram()
        self.sram = Sram(self.env)
        self.plans = PlanCache(self.env)
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._programs: OrderedDict[bytes, Prepared] = OrderedDict()
        self._cache_size = cache_size
        # SRAM entries some successful run on this device wrote; they persist like the hardware's SRAM.
        self.written = {b: np.zeros(d, dtype=bool) for b, d in self.sram.depths.items()}
        self._fidelity: PynqFidelity | None = None  # set during a fidelity="pynq" run

    def clear_counters(self) -> None:
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)

    def read_stream(self, insn_phys: int, insn_count: int) -> bytes:
        found = self.dram.find(insn_phys, insn_count * 16) if insn_count else None
        if insn_count and found is None:
            span = DramSpan(insn_phys, 1, insn_count * 16, insn_count * 16)
            raise dram_oob(span, None, "fetch", f"fetching {insn_count} instruction(s)")
        return found[0].data[found[1]:found[1] + insn_count * 16].tobytes() if found else b""

    def prepare(self, data: bytes) -> Prepared:
        """The static analysis of a stream, cached by its bytes (raises its static ProgramError)."""
        prog = self._programs.get(data)
        if prog is None:
            prog = prepare(DecodedStream(data, self.env), self.sram.depths)
            self._programs[data] = prog
            if len(self._programs) > self._cache_size:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(data)
        return prog

    def run(self, insn_phys: int, insn_count: int, *, execute: bool = True, carry_sram: bool = False,
            fidelity: str = "reference", hw_exec: bool = False) -> RunResult:
        """Run ``insn_count`` instructions at physical address ``insn_phys`` until FINISH.

        With ``execute=False`` every check runs but no data moves except micro-op loads
        (the program verifier). With ``carry_sram=True`` the program may read SRAM entries that
        an earlier successful run on this device wrote (the hardware keeps them; the runtime's
        auto-flushed continuations rely on it); by default a run must write what it reads.
        ``fidelity="pynq"`` also reports in ``divergences`` every construct the Pynq bitstream
        executes differently, and with ``hw_exec=True`` executes as the bitstream does
        (:mod:`vta.sim.hardware`); such runs are always checked, never replayed.
        Raises a ProgramError subclass for a bad program.
        """
        if fidelity not in ("reference", "pynq") or (hw_exec and fidelity != "pynq"):
            raise ConfigError(f"fidelity must be 'reference' or 'pynq' (hw_exec needs 'pynq'), got {fidelity!r} "
                              f"with hw_exec={hw_exec!r}")
        prog = self.prepare(self.read_stream(insn_phys, insn_count))
        if fidelity == "pynq":
            return self._run_pynq(prog, execute, carry_sram, hw_exec)
        found = self._locate(prog)
        uop_bytes = b"".join(dram_rows(found[d.index], d).tobytes() for d in prog.dma.values()
                             if d.buf == "uop" and d.y)
        v = prog.replay
        if isinstance(v, _Verified) and v.generation == self.dram.generation and v.uop_bytes == uop_bytes:
            if not execute:
                return self._finish(dict(v.counters), prog, False, True, v.written)
            if v.steps is not None:
                for step in v.steps:
                    step(None)
                return self._finish(dict(v.counters), prog, True, True, v.written)
        counters = dict.fromkeys(COUNTER_NAMES, 0)
        undo: UndoLog = []
        steps: list[Step] = []
        track = AccessTracker(self.sram.depths, prog.sched, self.written if carry_sram else None)
        try:
            self._checked(prog, found, counters, execute, undo, steps, track)
        except ProgramError:
            rollback(undo)
            raise
        written = track.written()
        if prog.replayable and not track.used_carry:  # a run that relied on earlier SRAM is re-checked each time
            steps_done = tuple(steps) if execute else None
            prog.replay = _Verified(self.dram.generation, uop_bytes, steps_done, dict(counters), written)
        return self._finish(counters, prog, execute, False, written)

    def _run_pynq(self, prog: Prepared, execute: bool, carry_sram: bool, hw_exec: bool) -> RunResult:
        found = self._locate(prog)
        counters = dict.fromkeys(COUNTER_NAMES, 0)
        undo: UndoLog = []
        track = AccessTracker(self.sram.depths, prog.sched, self.written if carry_sram else None)
        if hw_exec:
            # Verify with the reference semantics first; the bitstream's own pass may then read SRAM the
            # reference would not have written (that is the divergence being shown), so it is not refused.
            uops = self.sram.uop.copy()  # the check loads micro-ops with the reference semantics
            self._checked(prog, found, dict(counters), False, [], [], track)
            self.sram.uop[:] = uops
            written = track.written()
            track = AccessTracker(self.sram.depths, prog.sched, {b: np.ones_like(m) for b, m in written.items()})
        self._fidelity = fid = PynqFidelity(self.env, self.sram, prog.stream, hw_exec)
        if hw_exec:  # the reference pass found no race, so one found now exists only on the bitstream
            track.hw_cause = fid.track.race_cause
        try:
            self._checked(prog, found, counters, execute, undo, [], track)
        except ProgramError:
            rollback(undo)
            raise
        finally:
            self._fidelity = None
        result = self._finish(counters, prog, execute, False, written if hw_exec else track.written())
        result.divergences = fid.divergences
        return result

    def _finish(self, counters: dict[str, int], prog: Prepared, executed: bool, replayed: bool,
                written: dict[str, np.ndarray]) -> RunResult:
        for b, mask in written.items():
            self.written[b] |= mask
        counters = {k: v & _U64 for k, v in counters.items()}
        for k, v in counters.items():
            self.counters[k] = (self.counters[k] + v) & _U64
        return RunResult(counters, prog.sched, prog.stream, executed, replayed)

    def _locate(self, prog: Prepared) -> dict[int, tuple[DramBuffer, int]]:
        """The live buffer and offset of every DMA's DRAM side, or dram_oob."""
        found = {}
        for i, d in prog.dma.items():
            if d.y:
                hit = self.dram.find(d.span.start, d.span.end - d.span.start)
                if hit is None:
                    module = "store" if d.is_store else ("load" if d.buf in ("inp", "wgt") else "compute")
                    raise dram_oob(d.span, i, module, d.what)
                found[i] = hit
        return found

    def _checked(self, prog: Prepared, found: dict, counters: dict[str, int], execute: bool, undo: UndoLog,
                 steps: list[Step], track: AccessTracker) -> None:
        sram, env, opcode = self.sram, self.env, prog.stream.opcode
        words = prog.stream.words
        for i in prog.sched.order.tolist():
            op, f = int(opcode[i]), prog.fields[i]
            if op in (OP_LOAD, OP_STORE):
                d = prog.dma.get(i)
                if d is None:
                    continue  # x_size == 0: a pure dependency carrier
                counters[d.counter] += d.nbytes
                if d.is_store:
                    if d.y:
                        track.read("acc", slice(d.sram_lo, d.sram_hi), i, "STORE")
                        step = store_step(d, found[i], sram)
                        if self._fidelity is not None:
                            step = self._fidelity.store(i, d, found[i], step)
                    else:
                        continue
                else:
                    if d.buf == "uop":
                        track.load_uops(d.sram_lo, d.sram_hi)
                    else:
                        track.write(d.buf, slice(d.sram_lo, d.sram_hi), i, d.what)
                    step = load_step(d, found.get(i), env, sram)
                    if self._fidelity is not None:
                        step = self._fidelity.load(i, d, found.get(i), step)
                    if not execute and d.buf == "uop":
                        step(None)  # micro-ops are state the checks need, as in the reference's skip mode
            elif op == OP_GEMM:
                step = self._gemm(f, (int(words[i, 0]), int(words[i, 1])), i, track, counters)
            elif op == OP_ALU:
                step = self._alu(f, (int(words[i, 0]), int(words[i, 1])), i, track, counters)
            else:
                continue  # FINISH
            if step is not None:
                if execute:
                    step(undo)
                steps.append(step)
        if prog.dram_race is not None:
            raise prog.dram_race
        prog.sched.check()
        if track.uninit is not None:
            raise track.uninit

    def _loop_uops(self, f: dict[str, int], i: int, track: AccessTracker, what: str) -> np.ndarray | None:
        if f["iter_out"] == 0 or f["iter_in"] == 0 or f["uop_end"] == f["uop_bgn"]:
            return None
        track.read_uops(f["uop_bgn"], f["uop_end"], i, what)
        if self._fidelity is not None:
            self._fidelity.uops(i, f["uop_bgn"], f["uop_end"])
        return self.sram.uop[f["uop_bgn"]:f["uop_end"]]

    def _gemm(self, f: dict[str, int], words: tuple[int, int], i: int, track: AccessTracker,
              counters: dict[str, int]) -> Step | None:
        if not f["reset_reg"]:
            counters["gemm_counter"] += f["iter_out"] * f["iter_in"] * (f["uop_end"] - f["uop_bgn"])
        uops = self._loop_uops(f, i, track, "GEMM")
        if uops is None:
            return None
        plan = self.plans.get(f, words, uops, i)
        if not plan.reset:
            track.read("inp", plan.inp_set, i, "GEMM")
            track.read("wgt", plan.wgt_set, i, "GEMM")
            track.read("acc", plan.acc_set, i, "GEMM")
        track.write("acc", plan.acc_set, i, "GEMM")
        sram = self.sram
        if self._fidelity is not None:
            return self._fidelity.gemm(i, f, plan, uops, lambda undo: run_gemm(plan, sram))
        return lambda undo: run_gemm(plan, sram)

    def _alu(self, f: dict[str, int], words: tuple[int, int], i: int, track: AccessTracker,
             counters: dict[str, int]) -> Step | None:
        counters["alu_counter"] += f["iter_out"] * f["iter_in"] * (f["uop_end"] - f["uop_bgn"])
        uops = self._loop_uops(f, i, track, "ALU")
        if uops is None:
            return None
        plan = self.plans.get(f, words, uops, i)
        track.read("acc", plan.read_set, i, "ALU")
        track.write("acc", plan.write_set, i, "ALU")
        if self._fidelity is not None:
            return self._fidelity.alu(i, f, plan)
        sram = self.sram
        return lambda undo: run_alu(plan, f, sram)
