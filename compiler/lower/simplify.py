"""Pass 2: fold constants in every index and value, and drop loops of extent 1.

Extent-1 loops come from tiles that cover a whole axis; removing them keeps the dump short
and leaves only the loops that become DMA dimensions or micro-op loops.
"""

from __future__ import annotations

from vta.compiler.arith import simplify, substitute
from vta.compiler.expr import Const, Expr
from vta.compiler.lower.ir import Allocate, BufferLoad, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store

__all__ = ["simplify_func", "simplify_stmt"]


def _expr(e: Expr, env: dict) -> Expr:
    return simplify(substitute(e, env)) if env else simplify(e)


def _load(e: BufferLoad | None, env: dict) -> BufferLoad | None:
    return None if e is None else BufferLoad(e.buffer, tuple(_expr(i, env) for i in e.indices), e.dtype)


def simplify_stmt(stmt: Stmt, env: dict | None = None) -> Stmt:
    """Simplified copy of ``stmt``; ``env`` maps removed loop variables to 0."""
    env = env or {}
    if isinstance(stmt, For):
        if stmt.extent == 1:
            return simplify_stmt(stmt.body, {**env, stmt.var: Const(0)})
        return For(stmt.var, stmt.extent, simplify_stmt(stmt.body, env), stmt.kind)
    if isinstance(stmt, Seq):
        parts: list[Stmt] = []
        for s in stmt.stmts:
            new = simplify_stmt(s, env)
            parts.extend(new.stmts if isinstance(new, Seq) else (new,))
        return parts[0] if len(parts) == 1 else Seq(tuple(parts))
    if isinstance(stmt, Allocate):
        return Allocate(stmt.buffer, simplify_stmt(stmt.body, env))
    if isinstance(stmt, Pragma):
        return Pragma(stmt.key, simplify_stmt(stmt.body, env))
    if isinstance(stmt, Store):
        return Store(stmt.buffer, tuple(_expr(i, env) for i in stmt.indices), _expr(stmt.value, env))
    if isinstance(stmt, Gemm):
        return Gemm(_load(stmt.acc, env), _load(stmt.inp, env), _load(stmt.wgt, env), stmt.reset)  # type: ignore[arg-type]
    raise TypeError(f"unknown statement {type(stmt).__name__}")


def simplify_func(func: LoweredFunc) -> LoweredFunc:
    """The pass: simplify the body of ``func``."""
    return LoweredFunc(func.name, func.params, simplify_stmt(func.body))
