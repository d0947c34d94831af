"""GEMM and ALU execution: each instruction's whole loop nest as a few numpy operations.

A GEMM (spec §3.3) adds INP[i] @ WGT[w]^T into ACC[a] for every (i_out, i_in, uop) tuple.
Its *plan* regroups the tuples so BLAS does the work: accumulator entries that receive the
same sequence of weights form one matrix product (an im2col built from SRAM rows), and
groups that read the same inputs share one product with their weights side by side. The
products run in float32, which is exact while a sum stays below 2^24: int8 x int8 terms
are at most 2^14, so up to 1024 terms per sum. Results are added to the int32 accumulators
with wrap-around. Plans depend only on the instruction word and its micro-ops, so they are
cached: a conv layer repeats the same few GEMM instructions many times.

Planning enumerates every tuple, so memory grows with iter_out x iter_in x micro-ops. SRAM bounds
are checked arithmetically first (no enumeration), then an instruction with more tuples than
``PlanCache.max_iterations`` (``VTA_SIM_MAX_UOP_ITERATIONS``, default
:data:`vta.config.SIM_MAX_UOP_ITERATIONS`) is refused with SimLimitError before anything is allocated.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from vta.config import Environment, sim_max_uop_iterations
from vta.errors import SimLimitError, SramOutOfBoundsError
from vta.isa import ALU_ADD, ALU_MAX, ALU_MIN, ALU_MUL, ALU_NAMES, ALU_SHR, DEP_MASK, get_isa
from vta.sim.checks import Index, as_index
from vta.sim.sram import Sram

__all__ = ["PlanCache", "run_alu", "run_gemm"]

EXACT_TERMS = 1 << 10  # float32 sums of int8 products stay exact up to this many terms
# An ALU instruction whose iterations form more dependent steps than max_iterations >> SERIAL_SHIFT
# (and cannot be folded) is refused: each step costs a few numpy calls (about 20 us).
SERIAL_SHIFT = 4
SCATTER_BLOCK = 1 << 15  # tuples per block of an uneven GEMM's scatter (~13 MB of operands)


@dataclass(frozen=True)
class _Group:
    inp: np.ndarray  # (r, k) INP entries forming the left matrix rows
    wgt: np.ndarray  # (p, k) WGT entry sequence of each of p weight patterns
    acc: Index  # accumulator entries of the (p, r) outputs, a slice when contiguous


@dataclass(frozen=True)
class GemmPlan:
    reset: bool
    acc_set: Index
    inp_set: Index | None
    wgt_set: Index | None
    groups: tuple[_Group, ...]
    scatter: tuple[np.ndarray, ...] | None  # fallback: (acc_unique, acc_pos, inp, wgt) per tuple


@dataclass(frozen=True)
class AluPlan:
    dst: np.ndarray  # per tuple, in program order
    src: np.ndarray
    prev: np.ndarray  # per tuple, the earlier tuple it depends on (-1: none)
    fold: bool  # dependent updates that commute: one unbuffered ufunc.at gives the loop's result
    read_set: Index
    write_set: Index

    @functools.cached_property
    def chunks(self) -> tuple[tuple[Index, Index], ...]:
        """(dst, src) of each run of independent tuples, built on first use (a folded plan executes without them)."""
        return tuple((_flat_index(self.dst[lo:hi]), _flat_index(self.src[lo:hi])) for lo, hi in _runs(self.prev))


def _tuples(f: dict[str, int], uops: np.ndarray, isa_uop: object) -> tuple[np.ndarray, ...]:
    """Per (i_out, i_in, uop) tuple, the dst/src/wgt indices, in the reference's loop order."""
    dst, src, wgt = isa_uop
    io = np.arange(f["iter_out"], dtype=np.int64)[:, None, None]
    ii = np.arange(f["iter_in"], dtype=np.int64)[None, :, None]
    a = (dst[None, None, :] + io * f["dst_factor_out"] + ii * f["dst_factor_in"]).ravel()
    s = (src[None, None, :] + io * f["src_factor_out"] + ii * f["src_factor_in"]).ravel()
    w = (wgt[None, None, :] + io * f.get("wgt_factor_out", 0) + ii * f.get("wgt_factor_in", 0)).ravel()
    return a, s, w


def _entries(idx: np.ndarray, depth: int) -> Index:
    """Sorted distinct SRAM entries of ``idx`` (already bounds-checked) via a bitmap, cheaper than np.unique."""
    seen = np.zeros(depth, dtype=bool)
    seen[idx] = True
    return as_index(np.flatnonzero(seen))


def _first_oob(base: np.ndarray, fo: int, fi: int, n_out: int, n_in: int, depth: int) -> tuple[int, int, int] | None:
    """(i_out, i_in, micro-op) of the first tuple, in loop order, whose index ``base[u] + i_out*fo + i_in*fi``
    passes ``depth``, found without enumerating the tuples: the factors are unsigned, so the index only
    grows with i_out and i_in."""
    top = int(base.max())
    need = depth - top - (n_in - 1) * fi  # the first i_out whose largest index (at the last i_in) reaches depth
    if need <= 0:
        io = 0
    elif fo == 0 or -(-need // fo) >= n_out:
        return None
    else:
        io = -(-need // fo)
    need = depth - top - io * fo
    ii = 0 if need <= 0 else -(-need // fi)  # fi > 0 here: the last i_in of this i_out reaches depth
    u = int(np.flatnonzero(base >= depth - io * fo - ii * fi)[0])
    return io, ii, u


def _bounds(name: str, base: np.ndarray, factors: tuple[int, int], depth: int, f: dict[str, int], i: int,
            what: str, field: str) -> None:
    first = _first_oob(base, *factors, f["iter_out"], f["iter_in"], depth)
    if first is not None:
        i_out, i_in, u = first
        index = int(base[u]) + i_out * factors[0] + i_in * factors[1]
        raise SramOutOfBoundsError(
            f"{what} {field} index {index} (micro-op {f['uop_bgn'] + u}, i_out {i_out}, i_in {i_in}) "
            f"is past the {name} depth {depth}", index=i, module="compute")


def _check_size(f: dict[str, int], i: int, what: str, limit: int) -> None:
    """Refuse, before allocating, an instruction whose plan would need more memory than the limit allows."""
    nu = f["uop_end"] - f["uop_bgn"]
    n = f["iter_out"] * f["iter_in"] * nu
    if n > limit:
        raise SimLimitError(
            f"{what} runs {f['iter_out']} x {f['iter_in']} x {nu} = {n:,} micro-op iterations, more than the "
            f"simulator's limit of {limit:,} per instruction (the hardware would run it; the simulator needs "
            f"memory in proportion); set VTA_SIM_MAX_UOP_ITERATIONS to raise the limit", index=i, module="compute")


def _unique_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a small-int matrix and each row's pattern number: a random-projection hash
    groups them (much faster than a row sort), and the grouping is verified exactly."""
    key = m @ np.random.default_rng(0).integers(1, 1 << 40, m.shape[1], dtype=np.int64)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    patterns = m[first]
    if not np.array_equal(patterns[inverse.ravel()], m):  # a hash collision: fall back to sorting rows
        patterns, inverse = np.unique(m, axis=0, return_inverse=True)
    return patterns, inverse.ravel()


def _group_gemm(acc: np.ndarray, inp: np.ndarray, wgt: np.ndarray, max_k: int) -> tuple[tuple[_Group, ...], tuple]:
    counts = np.bincount(acc)
    uniq = np.flatnonzero(counts)
    counts = counts[uniq]
    k = int(counts[0])
    if not (counts == k).all() or k > max_k:
        pos = np.searchsorted(uniq, acc)
        return (), (uniq, pos, inp, wgt)
    order = np.argsort(acc, kind="stable")
    inp_m, wgt_m = inp[order].reshape(-1, k), wgt[order].reshape(-1, k)
    patterns, pat_of_row = _unique_rows(wgt_m)
    merged: dict[bytes, list[int]] = {}
    rows_of = [np.flatnonzero(pat_of_row == p) for p in range(len(patterns))]
    for p, rows in enumerate(rows_of):
        merged.setdefault(inp_m[rows].tobytes() + len(rows).to_bytes(8, "little"), []).append(p)
    groups = tuple(
        _Group(inp_m[rows_of[ps[0]]], patterns[ps], _flat_index(np.stack([uniq[rows_of[p]] for p in ps])))
        for ps in merged.values()
    )
    return groups, None


def _flat_index(idx: np.ndarray) -> Index:
    """A slice when the entries, in row-major order, are one increasing contiguous run."""
    flat = idx.ravel()
    if len(flat) and (np.diff(flat) == 1).all():
        return slice(int(flat[0]), int(flat[-1]) + 1)
    return flat


class PlanCache:
    """Execution plans keyed by instruction bits (dependency flags masked) and micro-op words."""

    def __init__(self, env: Environment, limit: int = 4096, max_iterations: int | None = None):
        self.env, self.isa, self.limit = env, get_isa(env), limit
        # per-instruction micro-op iterations planned at most; larger instructions raise SimLimitError
        self.max_iterations = sim_max_uop_iterations() if max_iterations is None else max_iterations
        self._plans: dict[tuple, GemmPlan | AluPlan] = {}

    def get(self, f: dict[str, int], words: tuple[int, int], uops: np.ndarray, i: int) -> GemmPlan | AluPlan:
        """The plan of the GEMM or ALU instruction ``i`` (fields ``f``, raw ``words``) over ``uops``."""
        key = (words[0] & ~DEP_MASK, words[1], uops.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            plan = self._build_alu(f, uops, i) if "alu_opcode" in f else self._build_gemm(f, uops, i)
            if len(self._plans) >= self.limit:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _build_gemm(self, f: dict[str, int], uops: np.ndarray, i: int) -> GemmPlan:
        env = self.env
        dst, src, wgt_base = self.isa.decode_uops(uops)
        what = "GEMM" + (" reset" if f["reset_reg"] else "")
        _bounds("ACC", dst, (f["dst_factor_out"], f["dst_factor_in"]), env.ACC_BUFF_DEPTH, f, i, what, "acc")
        if not f["reset_reg"]:
            _bounds("INP", src, (f["src_factor_out"], f["src_factor_in"]), env.INP_BUFF_DEPTH, f, i, what, "inp")
            _bounds("WGT", wgt_base, (f["wgt_factor_out"], f["wgt_factor_in"]), env.WGT_BUFF_DEPTH, f, i, what, "wgt")
        _check_size(f, i, what, self.max_iterations)
        acc, inp, wgt = _tuples(f, uops, (dst, src, wgt_base))
        if f["reset_reg"]:
            return GemmPlan(True, _entries(acc, env.ACC_BUFF_DEPTH), None, None, (), None)
        groups, scatter = _group_gemm(acc, inp, wgt, EXACT_TERMS // env.BLOCK_IN)
        return GemmPlan(False, _entries(acc, env.ACC_BUFF_DEPTH), _entries(inp, env.INP_BUFF_DEPTH),
                        _entries(wgt, env.WGT_BUFF_DEPTH), groups, scatter)

    def _build_alu(self, f: dict[str, int], uops: np.ndarray, i: int) -> AluPlan:
        env = self.env
        dst_base, src_base, _ = bases = self.isa.decode_uops(uops)
        what = f"ALU {ALU_NAMES[f['alu_opcode']]}"
        _bounds("ACC", dst_base, (f["dst_factor_out"], f["dst_factor_in"]), env.ACC_BUFF_DEPTH, f, i, what, "dst")
        # src is checked even with use_imm, as the reference does
        _bounds("ACC", src_base, (f["src_factor_out"], f["src_factor_in"]), env.ACC_BUFF_DEPTH, f, i, what, "src")
        _check_size(f, i, what, self.max_iterations)
        dst, src, _ = _tuples(f, uops, bases)
        reads = dst if f["use_imm"] else np.concatenate([dst, src])
        write_set = _entries(dst, env.ACC_BUFF_DEPTH)
        prev = _dependence(dst, src, bool(f["use_imm"]))
        if prev.max(initial=-1) < 0:
            return AluPlan(dst, src, prev, False, _entries(reads, env.ACC_BUFF_DEPTH), write_set)
        fold = _foldable(f, write_set, src, env.ACC_BUFF_DEPTH)
        steps = self.max_iterations >> SERIAL_SHIFT
        if not fold and _runs(prev, steps) is None:
            raise SimLimitError(
                f"{what} is a chain of more than {steps:,} dependent steps (each reads an entry an earlier micro-op "
                f"iteration wrote), the simulator's limit per instruction (VTA_SIM_MAX_UOP_ITERATIONS / "
                f"{1 << SERIAL_SHIFT}); set VTA_SIM_MAX_UOP_ITERATIONS to raise the limit", index=i, module="compute")
        return AluPlan(dst, src, prev, fold, _entries(reads, env.ACC_BUFF_DEPTH), write_set)


def _dependence(dst: np.ndarray, src: np.ndarray, use_imm: bool) -> np.ndarray:
    """Per tuple, the latest earlier tuple that wrote the entry it reads or rewrites (-1: none)."""
    n = len(dst)
    t = np.arange(n, dtype=np.int64)
    order = np.lexsort((t, dst))
    ds, ts = dst[order], t[order]
    prev = np.full(n, -1, dtype=np.int64)
    same = ds[1:] == ds[:-1]
    prev[ts[1:][same]] = ts[:-1][same]
    if not use_imm:
        key_w = ds * n + ts
        pos = np.searchsorted(key_w, src * n + t, side="left") - 1
        ok = (pos >= 0) & (ds[np.maximum(pos, 0)] == src)
        prev = np.maximum(prev, np.where(ok, ts[np.maximum(pos, 0)], -1))
    return prev


def _runs(prev: np.ndarray, limit: int | None = None) -> tuple[tuple[int, int], ...] | None:
    """Program-order runs where no tuple depends on an earlier tuple of its run (None: more than ``limit``).

    Only tuples with a dependence can end a run, so the Python loop visits just those, a block at a time.
    """
    cuts, start = [], 0
    deps = np.flatnonzero(prev >= 0)
    for lo in range(0, len(deps), 1 << 16):
        block = deps[lo:lo + (1 << 16)]
        for j, p in zip(block.tolist(), prev[block].tolist()):
            if p >= start:
                cuts.append(j)
                start = j
                if limit is not None and len(cuts) >= limit:
                    return None
    edges = [0, *cuts, len(prev)]
    return tuple(itertools.pairwise(edges))


def run_gemm(plan: GemmPlan, sram: Sram) -> None:
    acc = sram.acc
    if plan.reset:
        acc[plan.acc_set] = 0
        return
    b, bo = acc.shape[1], acc.shape[2]
    for g in plan.groups:
        r, k = g.inp.shape
        p = len(g.wgt)
        x = np.take(sram.inp, g.inp, axis=0)  # (r, k, b, bi): an im2col of the SRAM rows
        x = x.reshape(r, k * x.shape[3]) if b == 1 else x.transpose(0, 2, 1, 3).reshape(r * b, -1)
        w = np.take(sram.wgt_t, g.wgt, axis=0).reshape(p, x.shape[1], bo)  # one matrix per weight pattern
        acc[g.acc] += np.matmul(x, w).astype(np.int32).reshape(p * r, b, bo)
    if plan.scatter is not None:
        uniq, pos, inp, wgt = plan.scatter
        total = np.zeros((len(uniq), b, bo), dtype=np.int64)
        for lo in range(0, len(pos), SCATTER_BLOCK):  # blocks bound the gathered operands' memory
            hi = lo + SCATTER_BLOCK
            x = sram.inp[inp[lo:hi]].astype(np.float32)  # one product sums BLOCK_IN int8 terms: exact in float32
            w = sram.wgt_t[wgt[lo:hi]].astype(np.float32)
            np.add.at(total, pos[lo:hi], np.matmul(x, w).astype(np.int64))
        acc[uniq] += (total & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def _shift(a: np.ndarray, amount: np.ndarray | np.int32) -> np.ndarray:
    """SHR: arithmetic right shift, negative amounts shift left (mod 2^32); |amount| >= 32 saturates."""
    if np.ndim(amount) == 0:
        k = int(amount)
        if k >= 0:
            return a >> min(k, 31)
        return ((a.astype(np.int64) << min(-k, 63)) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    amt = np.asarray(amount, dtype=np.int64)
    right = a >> np.clip(amt, 0, 31).astype(np.int32)
    left = ((a.astype(np.int64) << np.clip(-amt, 0, 63)) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    return np.where(amt >= 0, right, left).astype(np.int32)


def _apply(op: int, a: np.ndarray, b: np.ndarray | np.int32) -> np.ndarray:
    if op == ALU_MIN:
        return np.minimum(a, b)
    if op == ALU_MAX:
        return np.maximum(a, b)
    if op == ALU_ADD:
        return a + b
    if op == ALU_MUL:
        return a * b
    assert op == ALU_SHR
    return _shift(a, b)


def _foldable(f: dict[str, int], write_set: Index, src: np.ndarray, depth: int) -> bool:
    """Whether each entry's updates commute, so their order within the instruction does not matter:
    MIN/MAX/ADD/MUL by values that do not change during the instruction (the immediate, or sources
    the instruction never writes), or SHR by the immediate (shifts by one amount add up)."""
    if f["use_imm"]:
        return True
    if f["alu_opcode"] == ALU_SHR:
        return False  # amounts of mixed sign do not commute
    written = np.zeros(depth, dtype=bool)
    written[write_set] = True
    return not written[src].any()


_AT = {ALU_MIN: np.minimum, ALU_MAX: np.maximum, ALU_ADD: np.add, ALU_MUL: np.multiply}


def _fold(plan: AluPlan, op: int, imm: np.int32 | None, acc: np.ndarray) -> None:
    """A foldable plan in one pass: ufunc.at applies repeated destinations one after another."""
    if op == ALU_SHR:  # SHR by the immediate, applied n times to an entry: one shift by n * imm
        entries = plan.write_set
        times = np.bincount(plan.dst, minlength=len(acc))[entries].astype(np.int64)
        acc[entries] = _shift(acc[entries], (times * int(imm))[:, None, None])
        return
    _AT[op].at(acc, plan.dst, imm if imm is not None else acc[plan.src])


def run_alu(plan: AluPlan, f: dict[str, int], sram: Sram) -> None:
    acc = sram.acc
    op, imm = f["alu_opcode"], np.int32(f["imm"])
    with np.errstate(over="ignore"):
        if plan.fold:
            _fold(plan, op, imm if f["use_imm"] else None, acc)
            return
        for d, s in plan.chunks:
            acc[d] = _apply(op, acc[d], imm if f["use_imm"] else acc[s])
