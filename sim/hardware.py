"""``pynq`` fidelity: lint a run against the Xilinx bitstream and, optionally, execute as it does.

In this mode a :class:`~vta.sim.device.SimDevice` run hands every data-moving step to a
:class:`PynqFidelity`, which records the divergences of :mod:`vta.sim.lint` and returns either
the reference step (lint only) or the HLS design's behaviour (``hw_exec``, spec §3.2-3.5, §3.11):
GEMM and ALU also write an 8-bit output shadow (the low byte of each lane); a reset GEMM writes
``old_acc + dot`` truncated to the shadow while the accumulator gets 0; LOAD ACC leaves the
shadow alone; STORE copies the shadow; SHR uses the low 5 bits of the amount as a signed
number; MUL and LOAD ACC_8BIT do nothing; WGT loads ignore pads; UOP loads copy only x_size
micro-ops. The shadow lives in ``Sram.out`` and is only maintained by ``hw_exec`` runs. A GEMM
pipeline hazard is only reported: which update the hardware loses depends on its timing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vta.config import Environment
from vta.errors import DeadlockError
from vta.isa import ALU_MUL, ALU_SHR, MEM_ACC, MEM_ACC_8BIT, MEM_INP, MEM_UOP, MEM_WGT, DecodedStream, get_isa
from vta.sim.compute import AluPlan, GemmPlan, _apply, _tuples, run_gemm
from vta.sim.dram import DramBuffer
from vta.sim.lint import LOAD_ACC, MUL, RESET_GEMM, SHADOWED, Divergence, ShadowTracker, static_divergences
from vta.sim.load import _converter, dram_rows
from vta.sim.program import Dma
from vta.sim.sram import Sram

__all__ = ["PynqFidelity"]

Step = Callable[[list | None], None]


def _nothing(undo: list | None) -> None:
    """What the bitstream does for an unimplemented instruction (only its dependency flags act)."""


def _sext5(amount: np.ndarray | np.int32) -> np.ndarray | np.int32:
    """The HLS shift amount: the low 5 bits of the operand as a signed number (-16..15)."""
    return ((np.asarray(amount, dtype=np.int32) & 31) ^ 16) - 16


class PynqFidelity:
    """One ``pynq``-mode run: collects divergences; with ``hw_exec`` supplies the bitstream's steps."""

    def __init__(self, env: Environment, sram: Sram, stream: DecodedStream, hw_exec: bool):
        self.env, self.sram, self.hw_exec = env, sram, hw_exec
        self.track = ShadowTracker(env.ACC_BUFF_DEPTH, env.UOP_BUFF_DEPTH)
        for d in static_divergences(stream):
            self.track.add(d)
        self._fetch_hang(stream)

    @property
    def divergences(self) -> tuple[Divergence, ...]:
        return tuple(sorted(self.track.found, key=lambda d: d.index))

    def _fetch_hang(self, stream: DecodedStream) -> None:
        from vta.sim.perf import PYNQ_Z1, estimate

        if max(np.bincount(stream.module, minlength=3)) <= PYNQ_Z1.cmd_queue_depth:
            return  # fetch can never block, so the reference's schedule is the hardware's
        try:
            estimate(stream)
        except DeadlockError as e:
            self.track.note(e.index if e.index is not None else 0, e.module or "fetch", "fetch_hang", f" ({e.detail})")

    # --- LOAD / STORE -----------------------------------------------------------------------
    def load(self, i: int, d: Dma, found: tuple[DramBuffer, int] | None, ref: Step) -> Step:
        if d.memory_type in (MEM_ACC, MEM_ACC_8BIT):
            self.track.wrote(i, slice(d.sram_lo, d.sram_hi), LOAD_ACC)
        mt = d.memory_type
        if mt == MEM_UOP:
            self.track.uop_load(i, d.sram_lo, 0 if found is None else d.x, d.sram_hi)
        if not self.hw_exec or mt in (MEM_INP, MEM_ACC):
            return ref  # INP and ACC loads, pads included, behave as in the reference
        padded = d.y_total != d.y or d.x_total != d.x
        if mt == MEM_ACC_8BIT or (found is None and mt in (MEM_UOP, MEM_WGT)):
            return _nothing  # not implemented / only pad rows, which these loads ignore
        if not (padded or (mt == MEM_UOP and d.y > 1)):
            return ref
        rows, lo = dram_rows(found, d), d.sram_lo
        if mt == MEM_UOP:
            uop = self.sram.uop
            return lambda undo: uop.__setitem__(slice(lo, lo + d.x), rows[0].view("<u4"))
        convert, wgt = _converter(self.env, d), self.sram.wgt_t
        return lambda undo: wgt.__setitem__(slice(lo, lo + d.x * d.y), convert(rows).reshape(-1, *wgt.shape[1:]))

    def store(self, i: int, d: Dma, found: tuple[DramBuffer, int], ref: Step) -> Step:
        self.track.store(i, d.sram_lo, d.sram_hi)
        if not self.hw_exec:
            return ref
        rows = dram_rows(found, d, writeable=True)
        src = self.sram.out[d.sram_lo:d.sram_hi]

        def step(undo: list | None) -> None:
            if undo is not None:
                undo.append((rows, rows.copy()))
            rows[...] = src.view(np.uint8).reshape(rows.shape)

        return step

    # --- GEMM / ALU -------------------------------------------------------------------------
    def uops(self, i: int, lo: int, hi: int) -> None:
        """GEMM/ALU ``i`` is about to run micro-ops lo..hi-1 (before its race checks, which may need to know)."""
        self.track.uops_run(i, lo, hi)

    def gemm(self, i: int, f: dict[str, int], plan: GemmPlan, uops: np.ndarray, ref: Step) -> Step:
        self.track.wrote(i, plan.acc_set, RESET_GEMM if plan.reset else SHADOWED)
        if not plan.reset:
            self.track.pipeline(i, _tuples(f, uops, get_isa(self.env).decode_uops(uops))[0])
        if not self.hw_exec:
            return ref
        sram = self.sram
        if not plan.reset:
            def step(undo: list | None) -> None:
                run_gemm(plan, sram)
                sram.out[plan.acc_set] = sram.acc[plan.acc_set].astype(np.int8)
            return step
        acc, inp, wgt = _tuples(f, uops, get_isa(self.env).decode_uops(uops))
        return lambda undo: _reset_gemm(sram, acc, inp, wgt)

    def alu(self, i: int, f: dict[str, int], plan: AluPlan) -> Step:
        mul = f["alu_opcode"] == ALU_MUL
        self.track.wrote(i, plan.write_set, MUL if mul else SHADOWED)
        sram, track, hw = self.sram, self.track, self.hw_exec
        op, imm, use_imm = f["alu_opcode"], np.int32(f["imm"]), bool(f["use_imm"])

        def step(undo: list | None) -> None:
            if hw and mul:
                return
            acc = sram.acc
            with np.errstate(over="ignore"):
                for d, s in plan.chunks:
                    b = imm if use_imm else acc[s]
                    if op == ALU_SHR and not use_imm:
                        track.shifts(i, b)
                    acc[d] = _apply(op, acc[d], _sext5(b) if hw and op == ALU_SHR else b)
            if hw:
                sram.out[plan.write_set] = acc[plan.write_set].astype(np.int8)

        return step


def _reset_gemm(sram: Sram, acc: np.ndarray, inp: np.ndarray, wgt: np.ndarray) -> None:
    """HLS reset GEMM: per micro-op, shadow = low byte of (acc + dot) and acc = 0, in loop order.

    An entry written twice reads the 0 its first write left, so only its last micro-op counts,
    added to the original value when it is the entry's only micro-op. Out-of-range operand
    indices wrap as the HLS address counters would (the reference does not read them).
    """
    last = len(acc) - 1 - np.unique(acc[::-1], return_index=True)[1]
    entries, counts = np.unique(acc, return_counts=True)
    x = np.take(sram.inp, inp[last], axis=0, mode="wrap")
    w = np.take(sram.wgt_t, wgt[last], axis=0, mode="wrap")
    dot = np.matmul(x, w).astype(np.int64)
    old = np.where((counts == 1)[:, None, None], sram.acc[entries].astype(np.int64), 0)
    sram.out[entries] = ((old + dot) & 0xFF).astype(np.uint8).view(np.int8)
    sram.acc[entries] = 0
