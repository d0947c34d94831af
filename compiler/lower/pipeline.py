"""The lowering pipeline: a checked schedule to a loop-nest program, one pass per line.

With ``debug=True`` the IR is checked between passes (every buffer access in bounds of its
declared rank, every loop variable bound), so a broken pass is named at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from vta.compiler.check import check_schedule
from vta.compiler.expr import IterVar, Tensor, walk
from vta.compiler.lower.ir import Allocate, BufferLoad, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store
from vta.compiler.lower.make_loop_nest import make_loop_nest
from vta.compiler.lower.simplify import simplify_func
from vta.compiler.schedule import Schedule
from vta.errors import LoweringError

__all__ = ["PASSES", "lower"]

PASSES = (
    simplify_func,
)


def lower(schedule: Schedule, args: Sequence[Tensor] | None = None, name: str = "main",
          debug: bool = False) -> LoweredFunc:
    """Check ``schedule`` in full, build its loop nest and run :data:`PASSES` in order.

    Parameters
    ----------
    schedule
        The schedule to lower.
    args
        Tensors that become parameters, in order (default: placeholders, then outputs).
    name
        Function name in the dump.
    debug
        Check the IR after every pass.

    Returns
    -------
    LoweredFunc
        ``str()`` of it is the readable loop-nest dump.

    Raises
    ------
    ScheduleError
        If the schedule breaks a hardware rule (SRAM capacity, ALU loops, coverage).
    LoweringError
        If ``debug`` finds a malformed IR after a pass.
    """
    bounds = check_schedule(schedule, strict=True)
    if args is None:
        args = [Tensor(st.op) for st in schedule.stages if st.is_placeholder] + list(schedule.outputs)
    func = make_loop_nest(schedule, bounds, list(args), name)
    for step in PASSES:
        func = step(func)
        if debug:
            verify(func, step.__name__)
    return func


def verify(func: LoweredFunc, after: str) -> None:
    """Raise LoweringError if a loop variable is used unbound or an access has the wrong rank."""

    def visit(stmt: Stmt, bound: frozenset) -> None:
        if isinstance(stmt, For):
            visit(stmt.body, bound | {stmt.var})
        elif isinstance(stmt, Seq):
            for s in stmt.stmts:
                visit(s, bound)
        elif isinstance(stmt, (Allocate, Pragma)):
            visit(stmt.body, bound)
        elif isinstance(stmt, Store):
            check(stmt.buffer, stmt.indices, bound, str(stmt).strip())
            for node in walk(stmt.value):
                if isinstance(node, BufferLoad):
                    check(node.buffer, node.indices, bound, str(stmt).strip())
        elif isinstance(stmt, Gemm):
            for ref in (stmt.acc, stmt.inp, stmt.wgt):
                if ref is not None:
                    check(ref.buffer, ref.indices, bound, str(stmt).strip())

    def check(buf, indices, bound, text: str) -> None:
        if len(indices) != len(buf.shape):
            raise LoweringError(f"after {after}: {text}: {buf.name} has rank {len(buf.shape)}, got {len(indices)}")
        for i in indices:
            for node in walk(i):
                if isinstance(node, IterVar) and node not in bound:
                    raise LoweringError(f"after {after}: {text}: loop variable {node.name} is not bound here")

    visit(func.body, frozenset())
