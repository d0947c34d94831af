"""numpy interpreters for tensor expressions and for the lowered loop nest.

They give every compiler stage a bit-exact oracle: a TE definition against the operator
references, and a lowered program against its TE. Each node's result wraps to its dtype
(two's complement), as the hardware's fixed-width registers do (spec §3.6).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vta.compiler.expr import (
    COMPARISONS,
    BinOp,
    Cast,
    Cmp,
    ComputeOp,
    Const,
    Expr,
    IterVar,
    Reduce,
    Select,
    Tensor,
    TensorLoad,
)
from vta.compiler.lower.ir import Allocate, BufferLoad, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store
from vta.errors import LoweringError

__all__ = ["evaluate", "run"]

_NP = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
       "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "bool": np.bool_}
_BIN = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "//": np.floor_divide, "%": np.mod,
    "min": np.minimum, "max": np.maximum, ">>": np.right_shift, "<<": np.left_shift,
}


def _wrap(x: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(x).astype(_NP[dtype]).astype(np.int64) if dtype != "bool" else np.asarray(x)


def _eval(e: Expr, env: Mapping, read, guarded: bool = False) -> np.ndarray:
    if isinstance(e, Const):
        return np.int64(e.value)
    if isinstance(e, IterVar):
        return env[e]
    if isinstance(e, BinOp):
        a, b = _eval(e.a, env, read, guarded), _eval(e.b, env, read, guarded)
        return _wrap(_BIN[e.op](np.int64(a), np.int64(b)), e.dtype)
    if isinstance(e, Cmp):
        return COMPARISONS[e.op](_eval(e.a, env, read, guarded), _eval(e.b, env, read, guarded))
    if isinstance(e, Cast):
        return _wrap(_eval(e.value, env, read, guarded), e.dtype)
    if isinstance(e, Select):
        cond = _eval(e.cond, env, read, guarded)
        return np.where(cond, _eval(e.true_value, env, read, True), _eval(e.false_value, env, read, True))
    if isinstance(e, (TensorLoad, BufferLoad)):
        idx = [np.int64(_eval(i, env, read, guarded)) for i in e.indices]
        return read(e, idx, guarded)
    raise LoweringError(f"cannot evaluate {e}")


def _gather(arr: np.ndarray, idx: list, guarded: bool, what: str) -> np.ndarray:
    for i, n in zip(idx, arr.shape):
        if not guarded and (np.any(i < 0) or np.any(i >= n)):
            raise LoweringError(f"{what}: index out of bounds of shape {arr.shape}")
    idx = [np.clip(i, 0, n - 1) for i, n in zip(idx, arr.shape)]
    return arr[tuple(idx)].astype(np.int64)


def evaluate(tensor: Tensor, inputs: Mapping[Tensor, np.ndarray]) -> np.ndarray:
    """Value of ``tensor`` given arrays for its placeholders (vectorised over all axes)."""
    cache: dict = {t.op: np.asarray(a) for t, a in inputs.items()}

    def value(t: Tensor) -> np.ndarray:
        if t.op not in cache:
            cache[t.op] = _compute(t.op, value)
        return cache[t.op]

    return value(tensor).astype(_NP[tensor.dtype])


def _compute(op: ComputeOp, value) -> np.ndarray:
    if not isinstance(op, ComputeOp):
        raise LoweringError(f"no input array given for placeholder {op.name}")
    axes = list(op.axis) + list(op.reduce_axis)
    env = {}
    for d, v in enumerate(axes):
        shape = [1] * len(axes)
        shape[d] = v.extent
        env[v] = np.arange(v.extent, dtype=np.int64).reshape(shape)

    def read(e: TensorLoad, idx: list, guarded: bool) -> np.ndarray:
        return _gather(value(e.tensor), idx, guarded, str(e))

    body = op.body.source if isinstance(op.body, Reduce) else op.body
    out = np.broadcast_to(_eval(body, env, read), [v.extent for v in axes])
    if op.reduce_axis:
        out = out.sum(axis=tuple(range(len(op.axis), len(axes))))
    return _wrap(out, op.dtype).astype(_NP[op.dtype])


def run(func: LoweredFunc, *arrays: np.ndarray) -> None:
    """Execute ``func`` on numpy arrays (one per parameter, updated in place)."""
    if len(arrays) != len(func.params):
        raise LoweringError(f"{func.name} takes {len(func.params)} arrays, got {len(arrays)}")
    mem = {}
    for buf, arr in zip(func.params, arrays):
        if tuple(arr.shape) != buf.shape or arr.dtype != _NP[buf.dtype]:
            raise LoweringError(f"{buf.name}: expected {buf.dtype}{list(buf.shape)}, got {arr.dtype}{list(arr.shape)}")
        mem[buf] = arr
    _exec(func.body, {}, mem)


def _read(mem):
    def read(e: BufferLoad, idx: list, guarded: bool) -> np.ndarray:
        return _gather(mem[e.buffer], idx, guarded, str(e))

    return read


def _exec(stmt: Stmt, env: dict, mem: dict) -> None:
    if isinstance(stmt, Seq):
        for s in stmt.stmts:
            _exec(s, env, mem)
    elif isinstance(stmt, (Pragma,)):
        _exec(stmt.body, env, mem)
    elif isinstance(stmt, Allocate):
        mem[stmt.buffer] = np.zeros(stmt.buffer.shape, _NP[stmt.buffer.dtype])
        _exec(stmt.body, env, mem)
    elif isinstance(stmt, For):
        if isinstance(stmt.body, Store) and _independent(stmt):
            _store(stmt.body, {**env, stmt.var: np.arange(stmt.extent, dtype=np.int64)}, mem)
            return
        for i in range(stmt.extent):
            env[stmt.var] = np.int64(i)
            _exec(stmt.body, env, mem)
    elif isinstance(stmt, Store):
        _store(stmt, env, mem)
    elif isinstance(stmt, Gemm):
        _gemm(stmt, env, mem)
    else:
        raise LoweringError(f"cannot execute {type(stmt).__name__}")


def _independent(loop: For) -> bool:
    """A store loop whose iterations write distinct elements can run as one numpy assignment."""
    store = loop.body
    from vta.compiler.arith import affine

    coefs = [(affine(i) or {}).get(loop.var, 0) for i in store.indices]  # type: ignore[attr-defined]
    return any(coefs) and all(affine(i) is not None for i in store.indices)  # type: ignore[attr-defined]


def _store(stmt: Store, env: dict, mem: dict) -> None:
    read = _read(mem)
    value = _eval(stmt.value, env, read)
    idx = [_eval(i, env, read) for i in stmt.indices]
    shape = np.broadcast_shapes(np.shape(value), *[np.shape(i) for i in idx])
    arr = mem[stmt.buffer]
    idx = [np.broadcast_to(i, shape) for i in idx]
    for i, n in zip(idx, arr.shape):
        if np.any(i < 0) or np.any(i >= n):
            raise LoweringError(f"{stmt}: index out of bounds of shape {arr.shape}")
    arr[tuple(idx)] = np.broadcast_to(value, shape).astype(arr.dtype)


def _entry(ref: BufferLoad, env: dict, mem: dict) -> np.ndarray:
    idx = tuple(int(_eval(i, env, _read(mem))) for i in ref.indices[:-2])
    return mem[ref.buffer][idx]


def _gemm(stmt: Gemm, env: dict, mem: dict) -> None:
    acc = _entry(stmt.acc, env, mem)
    if stmt.reset:
        acc[...] = 0
        return
    inp = _entry(stmt.inp, env, mem).astype(np.int64)  # type: ignore[arg-type]
    wgt = _entry(stmt.wgt, env, mem).astype(np.int64)  # type: ignore[arg-type]
    acc[...] = _wrap(acc.astype(np.int64) + inp @ wgt.T, "int32").astype(np.int32)
