"""Micro-op kernel generation: GEMM nests and ``alu`` loop nests become GEMM/ALU instructions.

A kernel has up to two hardware loops with constant index factors and a list of micro-ops
(spec §3.3-3.4). Loops whose factors chain contiguously are merged first; then the two
outermost loops become the hardware loops and the rest are unrolled into micro-ops, and if
that makes too many micro-ops the outermost loops stay on the host, one instruction each
(the FoldUopLoop idea of spec §7.4, applied to GEMM and ALU alike).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from vta.compiler.codegen.index import EntryForm, Form, Index
from vta.compiler.codegen.ops import COMPUTE, Footprint, KernelOp
from vta.compiler.codegen.sram import Placement
from vta.compiler.expr import IterVar
from vta.compiler.lower.ir import BufferLoad, Gemm
from vta.errors import LoweringError

__all__ = ["MAX_KERNEL_UOPS", "GemmTemplate", "Operand", "kernel_ops"]

# Micro-ops in one kernel: an eighth of the 8192-entry micro-op SRAM, so the kernels of a
# tile (both virtual threads, reset, GEMM, ALU) stay resident together in the runtime's ring.
MAX_KERNEL_UOPS = 1024


class Operand:
    """An SRAM operand of a kernel: its placement and the index of the entry's first element."""

    def __init__(self, ref: BufferLoad, placements: Mapping, where: str) -> None:
        if ref.buffer not in placements:
            raise LoweringError(f"{where}: {ref.buffer.name} ({ref.buffer.scope}) is not an on-chip tile")
        self.placement: Placement = placements[ref.buffer]
        self.name = ref.buffer.name
        self.indices = [Index(i, where) for i in ref.indices]
        self.entry = EntryForm(self.indices[:-2], self.placement.strides())

    def form(self, env: Mapping[IterVar, int]) -> Form:
        return self.entry(self.placement.start(env), env)


def kernel_ops(loops: Sequence[tuple[IterVar, int]], forms: Sequence[Form], scopes: Sequence[str], *, gemm: bool,
               writes: int = 1, where: str, folds: dict | None = None, pipeline_safe: bool = True,
               **fields: int | bool) -> list[KernelOp]:
    """Instructions computing ``forms`` (dst first) over ``loops``; operand k lives in ``scopes[k]``.

    ``folds`` memoizes the loop order and fold, which depend only on extents and factors: the
    instances of one statement (other outer-loop values, other virtual threads) share them.
    ``pipeline_safe=False`` folds an accumulating GEMM as TVM does, even where consecutive micro-ops
    update one accumulator entry (which the board's GEMM pipeline may get wrong, :func:`_pipeline_hazard`).
    """
    dims = [(n, tuple(f.get(v, 0) for f in forms)) for v, n in loops if n > 1]
    known = {v for v, _ in loops}
    for f in forms:
        stray = [v.name for v in f if v is not None and v not in known]
        if stray:
            raise LoweringError(f"{where}: index uses loop {stray[0]} that is not part of this kernel")
    accumulates = gemm and not fields.get("reset", False) and pipeline_safe
    # A GEMM's iterations may run in any order (integer sums commute): moving the loops that keep
    # the destination outermost is the fallback when the given order would repeat one. An ALU
    # instruction keeps the schedule's order (an in-place update may read entries it also writes).
    folds = {} if folds is None else folds
    key = (tuple(dims), gemm, accumulates, len(forms))
    if key not in folds:
        folds[key] = _Plan(*_choose(*key[:3]), gemm, len(forms))
    plan = folds[key]
    ops = []
    base = tuple(f[None] for f in forms)
    for idx in itertools.product(*(range(n) for n, _ in plan.dims[:plan.control])):
        start = tuple(b + sum(i * cs[k] for i, (_, cs) in zip(idx, plan.dims)) for k, b in enumerate(base))
        ops.append(plan.op(start, scopes, writes, **fields))
    return ops


class _Plan:
    """The micro-ops and footprint extents of a kernel relative to its start entries, shared by its instances
    (they differ only by the start): each instance then costs an addition instead of a new micro-op grid."""

    def __init__(self, dims: tuple, control: int, gemm: bool, width: int) -> None:
        self.dims, self.control, self.gemm = dims, control, gemm
        hw = dims[control:control + 2]
        unrolled = _order(list(dims[control + 2:])) if gemm else list(dims[control + 2:])
        self.offsets = np.array(_uops((0,) * width, unrolled), dtype=np.int64).reshape(-1, width)
        self.hw_loops = tuple((n, *cs) for n, cs in hw)
        spans = [[lp[k + 1] * (lp[0] - 1) for lp in self.hw_loops] for k in range(width)]
        self.lo = self.offsets.min(axis=0) + np.array([sum(min(0, x) for x in sp) for sp in spans], dtype=np.int64)
        self.hi = self.offsets.max(axis=0) + np.array([sum(max(0, x) for x in sp) for sp in spans], dtype=np.int64) + 1
        self.made: dict[tuple, tuple] = {}

    def op(self, start: tuple[int, ...], scopes: Sequence[str], writes: int, **fields: int | bool) -> KernelOp:
        key = (start, tuple(scopes))
        made = self.made.get(key)
        if made is None:  # instances in the same SRAM context (same start) share their micro-ops
            first = np.array(start, dtype=np.int64)
            uops = tuple(map(tuple, (self.offsets + first).tolist()))
            feet = tuple(Footprint(scope, int(first[k] + self.lo[k]), int(first[k] + self.hi[k]))
                         for k, scope in enumerate(scopes))
            made = self.made[key] = (uops, feet)
        uops, feet = made
        return KernelOp(COMPUTE, feet, feet[:writes], gemm=self.gemm, loops=self.hw_loops, uops=uops, **fields)


def _choose(dims: tuple, gemm: bool, accumulates: bool) -> tuple[tuple, int]:
    """The loop order and fold of a kernel: the given order, or for a GEMM the order with the
    destination-keeping loops outermost when that leaves fewer loops on the host."""
    fold = _fold(_merge(dims), gemm, accumulates)
    if gemm and fold[1]:
        other = _fold(_merge(_order(list(dims))), gemm, accumulates)
        if _host_count(*other) < _host_count(*fold):
            fold = other
    return tuple(fold[0]), fold[1]


def _fold(dims: list, gemm: bool, accumulates: bool) -> tuple[list, int]:
    """(dims, number of outer dims left on the host): the fewest host loops that give a legal kernel."""
    for control in range(len(dims)):
        hw, unrolled = dims[control:control + 2], _order(dims[control + 2:]) if gemm else dims[control + 2:]
        n_uops = int(np.prod([n for n, _ in unrolled])) if unrolled else 1
        if n_uops <= MAX_KERNEL_UOPS and all(c >= 0 for _, cs in hw for c in cs) and not (
                accumulates and _pipeline_hazard(hw, unrolled)):
            return dims, control
    return dims, len(dims)  # every loop on the host: one micro-op per instruction


def _host_count(dims: list, control: int) -> int:
    return int(np.prod([n for n, _ in dims[:control]])) if control else 1


def _merge(dims: list) -> list:
    out: list = []
    for n, cs in dims:
        if out and all(o == c * n for o, c in zip(out[-1][1], cs)):
            out[-1] = (out[-1][0] * n, cs)
        else:
            out.append((n, cs))
    return out


def _order(dims: list) -> list:
    """GEMM loops that leave the destination unchanged go outermost: consecutive micro-ops must not
    write the same accumulator entry (the HLS GEMM pipeline, spec §3.3)."""
    return [d for d in dims if d[1][0] == 0] + [d for d in dims if d[1][0] != 0]


def _pipeline_hazard(hw: list, unrolled: list) -> bool:
    """Would an accumulator entry be written twice within three micro-op executions? The HLS GEMM
    loop is pipelined at II=1 with no dependence declared on the accumulator (spec §3.3), so such a
    kernel can lose updates on the board; separate instructions drain the pipeline in between."""
    dst = np.zeros(1, dtype=np.int64)
    for n, cs in hw:
        dst = (dst[:, None] + np.arange(n) * cs[0]).ravel()
    offsets = np.array([u[0] for u in _uops((0,), [(n, cs[:1]) for n, cs in unrolled])], dtype=np.int64)
    seq = (dst[:, None] + offsets[None, :]).ravel()
    return bool((seq[1:] == seq[:-1]).any() or (seq[2:] == seq[:-2]).any())


def _uops(start: tuple[int, ...], unrolled: list) -> tuple[tuple[int, ...], ...]:
    grids = np.meshgrid(*(np.arange(n) for n, _ in unrolled), indexing="ij") if unrolled else []
    cols = []
    for k, s in enumerate(start):
        col = np.full(grids[0].shape if grids else (), s, dtype=np.int64)
        for g, (_, cs) in zip(grids, unrolled):
            col = col + g * cs[k]
        cols.append(col.ravel())
    return tuple(zip(*(c.tolist() for c in cols)))


class GemmTemplate:
    """A loop nest around one GEMM intrinsic call (or its reset), analysed once."""

    def __init__(self, loops: Sequence[tuple[IterVar, int]], call: Gemm, placements: Mapping, *,
                 pipeline_safe: bool = True) -> None:
        self.where = f"gemm on {call.acc.buffer.name}"
        self.pipeline_safe = pipeline_safe
        self.loops = list(loops)
        self.call = call
        self.acc = Operand(call.acc, placements, self.where)
        self.inp = None if call.reset else Operand(call.inp, placements, self.where)
        self.wgt = None if call.reset else Operand(call.wgt, placements, self.where)
        self.folds: dict = {}

    def instantiate(self, env: Mapping[IterVar, int]) -> list[KernelOp]:
        if self.call.reset:
            forms = [self.acc.form(env), {None: 0}, {None: 0}]
            return kernel_ops(self.loops, forms, ["acc"], gemm=True, where=self.where, folds=self.folds, reset=True)
        forms = [self.acc.form(env), self.inp.form(env), self.wgt.form(env)]
        return kernel_ops(self.loops, forms, ["acc", "inp", "wgt"], gemm=True, where=self.where, folds=self.folds,
                          pipeline_safe=self.pipeline_safe)
