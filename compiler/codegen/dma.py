"""DMA code generation: a ``dma_copy`` loop nest becomes 2-D LOAD/STORE instructions.

The SRAM side of a copy must be one contiguous run of entries in loop order; the DRAM side is
folded into ``(y_size, x_size, x_stride)`` by merging loops whose DRAM steps are contiguous,
and loops that do not fold become one instruction each (spec §7.4 DMA pattern extraction).
Padding comes from the copy's ``select`` condition, evaluated with the outer loops fixed, and
lands in the instruction's four pad fields (spec §3.2): only the two DMA dimensions may be padded.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vta.compiler.arith import row_major
from vta.compiler.codegen.index import EntryForm, Index
from vta.compiler.codegen.ops import COMPUTE, LOAD, STORE, Footprint, LoadOp, StoreOp, VtaOp
from vta.compiler.codegen.sram import SCOPES, Placement
from vta.compiler.expr import COMPARISONS, DTYPES, Cast, Cmp, Const, Expr, IterVar, Select, walk
from vta.compiler.lower.ir import Buffer, BufferLoad, For, Pragma, Store
from vta.config import Environment
from vta.errors import LoweringError
from vta.isa import MEM_ACC, MEM_ACC_8BIT, MEM_INP, MEM_OUT, MEM_WGT

__all__ = ["DmaTemplate", "perfect_nest"]

_FIELD_MAX = 0xFFFF  # y_size, x_size, x_stride are 16-bit fields (spec §2.4)
_PAD_MAX = 15  # 4-bit pad fields


@dataclass(frozen=True)
class _Dim:
    n: int  # entries in SRAM along this dim, padding included
    step: int  # DRAM elements per step
    lo: int  # first index holding data
    hi: int  # one past the last

    @property
    def padded(self) -> bool:
        return self.lo > 0 or self.hi < self.n


_UNIT = _Dim(1, 1, 0, 1)


def perfect_nest(stmt, where: str) -> tuple[list[tuple[IterVar, int]], object]:
    """(loops outer first, innermost statement) of a chain of For loops."""
    loops = []
    while isinstance(stmt, For):
        loops.append((stmt.var, stmt.extent))
        stmt = stmt.body
    if isinstance(stmt, Pragma):
        raise LoweringError(f"{where}: a pragma nested inside another pragma's loops is not supported")
    return loops, stmt


def _atoms(cond: Expr) -> list[Cmp]:
    if isinstance(cond, Cmp) and cond.op == "&&":
        return _atoms(cond.a) + _atoms(cond.b)
    if isinstance(cond, Cmp) and cond.op in COMPARISONS:
        return [cond]
    raise LoweringError(f"padding condition {cond} is not a conjunction of comparisons")


class DmaTemplate:
    """One ``dma_copy`` pragma, analysed once and instantiated for each value of the outer loops."""

    def __init__(self, pragma: Pragma, params: Sequence[Buffer], placements: Mapping[Buffer, Placement],
                 env: Environment) -> None:
        loops, store = perfect_nest(pragma.body, "dma_copy")
        if not isinstance(store, Store):
            raise LoweringError(f"dma_copy must wrap a loop nest around one copy, got {type(store).__name__}")
        self.where = f"dma_copy into {store.buffer.name}"
        value, self.cond = store.value, None
        if isinstance(value, Select):
            if not (isinstance(value.false_value, Const) and value.false_value.value == 0):
                raise LoweringError(f"{self.where}: DMA padding is always 0 (LOAD inserts zeros only), "
                                    f"got {value.false_value}")
            self.cond, value = _atoms(value.cond), value.true_value
        src = value.value if isinstance(value, Cast) else value
        if not isinstance(src, BufferLoad):
            raise LoweringError(f"{self.where}: a DMA copies a tensor, got {store.value}")
        self.is_load = store.buffer.scope in SCOPES
        sram, dram = (store.buffer, src.buffer) if self.is_load else (src.buffer, store.buffer)
        sram_idx, dram_idx = (store.indices, src.indices) if self.is_load else (src.indices, store.indices)
        if sram.scope not in SCOPES or dram.scope != "global":
            raise LoweringError(f"{self.where}: a DMA moves data between DRAM and SRAM, got {dram.scope} -> "
                                f"{sram.scope}")
        if dram not in params:
            raise LoweringError(f"{self.where}: {dram.name} is an intermediate tensor in DRAM; make it a parameter "
                                "or keep it on chip")
        if not self.is_load and sram.scope != "local.acc_buffer":
            raise LoweringError(f"{self.where}: STORE reads the accumulator (local.acc_buffer), not {sram.scope}")
        if self.cond is not None and not self.is_load:
            raise LoweringError(f"{self.where}: STORE cannot pad (only LOAD has pad fields)")
        self.param = params.index(dram)
        self.placement = placements[sram]
        self.scope = self.placement.scope
        self.memory_type = self._memory_type(sram, dram, env)
        lanes = {v for i in store.indices[-2:] for v in walk(i) if isinstance(v, IterVar)}
        if tuple(sram_idx[-2:]) != tuple(dram_idx[-2:]):
            raise LoweringError(f"{self.where}: the two innermost dims must be copied as whole entries, got "
                                f"{list(sram_idx[-2:])} vs {list(dram_idx[-2:])}")
        self.loops = [(v, n) for v, n in loops if v not in lanes]
        self.sram_idx = [Index(i, self.where) for i in sram_idx[:-2]]
        self.dram_idx = [Index(i, self.where) for i in dram_idx[:-2]]
        self.dram_strides = row_major(dram.shape[:-2])

    def _memory_type(self, sram: Buffer, dram: Buffer, env: Environment) -> int:
        """The LOAD's memory type (spec §2.7), after checking that a DRAM block is one element of it."""
        if sram.shape[-2:] != dram.shape[-2:]:
            raise LoweringError(f"{self.where}: {dram.name} has entry blocks {dram.shape[-2:]}, the SRAM tile "
                                f"{sram.shape[-2:]}")
        if not self.is_load:
            mem, elem = MEM_OUT, env.OUT_ELEM_BYTES
        elif self.scope == "acc" and dram.dtype == "int8":
            mem, elem = MEM_ACC_8BIT, env.ACC_ELEM_BYTES // 4  # sign-extending load (spec §3.2)
            warnings.warn(f"{self.where}: an int8 tensor loaded into the accumulator is LOAD ACC_8BIT, which the "
                          "Pynq bitstream does not implement; load int32 data to run on the board",
                          stacklevel=2)
        else:
            mem, elem = {"inp": (MEM_INP, env.INP_ELEM_BYTES), "wgt": (MEM_WGT, env.WGT_ELEM_BYTES),
                         "acc": (MEM_ACC, env.ACC_ELEM_BYTES)}[self.scope]
        lanes = int(np.prod(dram.shape[-2:]))
        nbytes = lanes * DTYPES[dram.dtype][0] // 8
        if nbytes != elem:
            raise LoweringError(f"{self.where}: a {dram.dtype} block of {lanes} lanes is {nbytes} bytes; this DMA "
                                f"moves {elem}-byte elements")
        return mem

    def instantiate(self, env: Mapping[IterVar, int]) -> list[VtaOp]:
        """The LOAD/STORE instructions of this copy with the outer loops fixed by ``env``."""
        forms = self.__dict__.get("_forms")
        if forms is None:  # computed once for all instances of the copy
            forms = self.__dict__["_forms"] = (EntryForm(self.sram_idx, self.placement.strides()),
                                               EntryForm(self.dram_idx, self.dram_strides))
        sram = forms[0](self.placement.start(env), env)
        dram = forms[1](0, env)
        valid = self._valid(env)
        dims, step = [], 1
        for (v, n), (lo, hi) in reversed(list(zip(self.loops, valid))):
            if n == 1 and hi > lo:
                continue
            if sram.get(v, 0) != step:
                raise LoweringError(f"{self.where}: the SRAM side is not one contiguous run of entries in loop "
                                    f"order (loop {v.name} steps {sram.get(v, 0)} entries, expected {step})")
            step *= n
            dims.insert(0, _Dim(n, dram.get(v, 0), lo, hi))
        if any(d.hi <= d.lo for d in dims):
            raise LoweringError(f"{self.where}: the tile lies entirely in the padding; use a larger tile")
        outer, y, x = _fold(dims, self.where)
        return self._ops(outer, y, x, sram[None], dram[None])

    def _cond_indices(self) -> list[tuple[object, Index]]:
        """Each padding condition with its affine form, computed once for all instances of the copy."""
        cached = self.__dict__.get("_conds")
        if cached is None:
            cached = self.__dict__["_conds"] = [(atom, Index(atom.a - atom.b, self.where)) for atom in self.cond or ()]
        return cached

    def _valid(self, env: Mapping[IterVar, int]) -> list[tuple[int, int]]:
        """Per copy loop, the [lo, hi) range that holds data (outside it: padding); memoized on the values of
        the outer loops the padding conditions read."""
        conds = self._cond_indices()
        outer = sorted({v for _, index in conds for v in (index.form or {}) if v is not None and v in env},
                       key=lambda v: v.name)
        if any(index.form is None for _, index in conds):
            return self._valid_now(env)
        memo = self.__dict__.setdefault("_valid_memo", {})
        key = tuple((v, env[v]) for v in outer)
        if key not in memo:
            memo[key] = self._valid_now(env)
        return memo[key]

    def _valid_now(self, env: Mapping[IterVar, int]) -> list[tuple[int, int]]:
        masks = [np.ones(n, bool) for _, n in self.loops]
        pos = {v: k for k, (v, _) in enumerate(self.loops)}
        for atom, index in self._cond_indices():
            form = index.bind(env)
            vars_ = [v for v in form if v is not None]
            if len(vars_) > 1 or any(v not in pos for v in vars_):
                raise LoweringError(f"{self.where}: padding condition {atom} must bound a single copy loop")
            if not vars_:
                if not COMPARISONS[atom.op](form[None], 0):
                    masks = [np.zeros_like(m) for m in masks]
                continue
            k = pos[vars_[0]]
            masks[k] &= COMPARISONS[atom.op](form[vars_[0]] * np.arange(len(masks[k])) + form[None], 0)
        out = []
        for (v, _), m in zip(self.loops, masks):
            hit = np.flatnonzero(m)
            if len(hit) and hit[-1] - hit[0] + 1 != len(hit):
                raise LoweringError(f"{self.where}: the data along loop {v.name} is not one contiguous range")
            out.append((int(hit[0]), int(hit[-1]) + 1) if len(hit) else (0, 0))
        return out

    def _ops(self, outer: list[_Dim], y: _Dim, x: _Dim, sram0: int, dram0: int) -> list[VtaOp]:
        ops: list[VtaOp] = []
        block = y.n * x.n
        y_size, x_size = y.hi - y.lo, x.hi - x.lo
        stride = y.step if y_size > 1 else x_size
        pads = (y.lo, y.n - y.hi, x.lo, x.n - x.hi)
        if self.memory_type == MEM_WGT and any(pads):
            raise LoweringError(f"{self.where}: the Pynq bitstream ignores padding on weight loads; "
                                "pad the weights in DRAM instead")
        if max(pads) > _PAD_MAX:
            raise LoweringError(f"{self.where}: padding {pads} (y before/after, x before/after) exceeds the "
                                f"4-bit pad fields (at most {_PAD_MAX} entries each)")
        for flat, idx in enumerate(itertools.product(*(range(d.n) for d in outer))):
            sram = sram0 + flat * block
            dram = dram0 + sum(i * d.step for i, d in zip(idx, outer)) + y.lo * y.step + x.lo * x.step
            if self.is_load:
                module = LOAD if self.scope in ("inp", "wgt") else COMPUTE
                ops.append(LoadOp(module, (), (Footprint(self.scope, sram, sram + block),), param=self.param,
                                  elem_offset=dram, x_size=x_size, y_size=y_size, x_stride=stride, pads=pads,
                                  sram_index=sram, memory_type=self.memory_type))
            else:
                ops.append(StoreOp(STORE, (Footprint("acc", sram, sram + block),), (), param=self.param,
                                   elem_offset=dram, x_size=x_size, y_size=y_size, x_stride=stride, sram_index=sram))
        return ops


def _merge(outer: _Dim, inner: _Dim) -> _Dim | None:
    if outer.padded or inner.padded or outer.step != inner.step * inner.n:
        return None
    return _Dim(outer.n * inner.n, inner.step, 0, outer.n * inner.n)


def _fold(dims: list[_Dim], where: str) -> tuple[list[_Dim], _Dim, _Dim]:
    """Split loop dims into (one instruction per outer index, y, x); x is DRAM-contiguous."""
    rest = list(dims)
    x = rest.pop() if rest else _UNIT
    while rest and (m := _merge(rest[-1], x)) is not None:
        rest.pop()
        x = m
    if x.step != 1 and x.hi - x.lo > 1:
        rest.append(x)
        x = _UNIT
    y = rest.pop() if rest else _UNIT
    while rest and (m := _merge(rest[-1], y)) is not None:
        rest.pop()
        y = m
    if y.hi - y.lo > 1 and y.step > _FIELD_MAX:
        if y.padded:
            raise LoweringError(f"{where}: DRAM row pitch {y.step} exceeds the 16-bit x_stride field")
        rest.append(y)
        y = _UNIT
    for d in rest:
        if d.padded:
            raise LoweringError(f"{where}: only the two innermost DMA dimensions can be padded")
    for d in (x, y):
        if d.hi - d.lo > _FIELD_MAX:
            raise LoweringError(f"{where}: {d.hi - d.lo} elements exceed the 16-bit size field")
    return rest, y, x
