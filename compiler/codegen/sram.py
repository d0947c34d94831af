"""SRAM placement: where each on-chip tile buffer lives, per virtual thread.

Buffers are placed like a stack per scope along the loop nest: a tile allocated inside a loop
gets the same entries on every iteration (the dependency pass keeps the reuse safe), and a tile
inside virtual threads gets one copy per thread (spec §7.4), which is what lets one thread load
while another computes. An ALU stage that is the only reader of its operand writes in place
over that operand's entries (the same rule the schedule checks use for capacity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vta.compiler.arith import row_major, strip_cast
from vta.compiler.expr import BinOp, Expr, IterVar, walk
from vta.compiler.lower.ir import (
    Allocate,
    Buffer,
    BufferLoad,
    For,
    LoweredFunc,
    Pragma,
    Seq,
    Stmt,
    Store,
    leaf_statements,
)
from vta.compiler.stage import SRAM_DEPTH
from vta.config import Environment
from vta.errors import LoweringError

__all__ = ["SCOPES", "Placement", "alu_parts", "depths", "plan_sram"]

SCOPES = {"local.inp_buffer": "inp", "local.wgt_buffer": "wgt", "local.acc_buffer": "acc"}


def depths(env: Environment) -> dict[str, int]:
    """Entries of each on-chip buffer, by short scope name."""
    return {short: getattr(env, SRAM_DEPTH[scope]) for scope, short in SCOPES.items()}


@dataclass(frozen=True)
class Placement:
    """Entries of one tile buffer: ``base + thread * entries`` for each virtual-thread combination."""

    scope: str
    base: int
    entries: int
    shape: tuple[int, ...]
    threads: tuple[tuple[IterVar, int], ...]

    def start(self, env: Mapping[IterVar, int]) -> int:
        """First entry of the copy that belongs to the virtual threads bound in ``env``."""
        copy = 0
        for var, extent in self.threads:
            copy = copy * extent + env[var]
        return self.base + copy * self.entries

    def strides(self) -> tuple[int, ...]:
        """Entry step of each leading dimension (the last two dims form one entry, spec §2.10)."""
        return (*row_major(self.shape[:-2]), 0, 0)


def alu_parts(store: Store) -> tuple[BufferLoad | None, Expr]:
    """(operand read at the destination's own index or None, the whole value) of an ALU store."""
    value = strip_cast(store.value)
    operands = [strip_cast(value.a), strip_cast(value.b)] if isinstance(value, BinOp) else [value]
    for x in operands:
        if isinstance(x, BufferLoad) and x.indices == store.indices and x.buffer.shape == store.buffer.shape:
            return x, value
    return None, value


def _reads(func: LoweredFunc) -> dict[Buffer, int]:
    """How many statements read each buffer."""
    count: dict[Buffer, int] = {}
    for s, _ in leaf_statements(func.body):
        if isinstance(s, Store):
            read = {n.buffer for n in walk(s.value) if isinstance(n, BufferLoad)}
        else:
            read = {ref.buffer for ref in (s.inp, s.wgt) if ref is not None}
        for b in read:
            count[b] = count.get(b, 0) + 1
    return count


def _aliases(func: LoweredFunc) -> dict[Buffer, Buffer]:
    """ALU destination -> the operand buffer it overwrites in place."""
    reads = _reads(func)
    alias: dict[Buffer, Buffer] = {}
    for s, pragma in leaf_statements(func.body):
        if pragma != "alu" or not isinstance(s, Store):
            continue
        src, value = alu_parts(s)
        if src is None or src.buffer is s.buffer or reads.get(src.buffer) != 1 or src.buffer.scope != s.buffer.scope:
            continue
        # an update that also reads its operand at other entries must not overwrite it as it goes
        if all(n.indices == s.indices for n in walk(value) if isinstance(n, BufferLoad) and n.buffer is src.buffer):
            alias[s.buffer] = src.buffer
    return alias


def plan_sram(func: LoweredFunc, env: Environment) -> dict[Buffer, Placement]:
    """Place every SRAM tile of ``func``; raise LoweringError if a scope overflows."""
    alias = _aliases(func)
    placed: dict[Buffer, Placement] = {}
    top = dict.fromkeys(SCOPES.values(), 0)
    peak = dict(top)

    def visit(s: Stmt, threads: tuple[tuple[IterVar, int], ...]) -> None:
        if isinstance(s, Seq):
            for x in s.stmts:
                visit(x, threads)
        elif isinstance(s, For):
            visit(s.body, threads + ((s.var, s.extent),) if s.kind == "vthread" else threads)
        elif isinstance(s, Pragma):
            visit(s.body, threads)
        elif isinstance(s, Allocate):
            buf, scope = s.buffer, SCOPES.get(s.buffer.scope)
            if scope is None or buf in alias:
                visit(s.body, threads)
                return
            entries = 1
            for n in buf.shape[:-2]:
                entries *= n
            copies = 1
            for _, n in threads:
                copies *= n
            placed[buf] = Placement(scope, top[scope], entries, buf.shape, threads)
            top[scope] += entries * copies
            peak[scope] = max(peak[scope], top[scope])
            visit(s.body, threads)
            top[scope] -= entries * copies

    visit(func.body, ())
    for scope, depth in depths(env).items():
        used = peak[scope]
        if used > depth:
            raise LoweringError(f"{func.name}: the {scope} tiles need {used} SRAM entries at once but the buffer "
                                f"holds {depth}; use smaller tiles or fewer virtual threads")
    for buf, target in alias.items():
        while target in alias:
            target = alias[target]
        if target not in placed:
            raise LoweringError(f"{func.name}: {buf.name} writes in place over {target.name}, which is not an "
                                "on-chip tile")
        placed[buf] = placed[target]
    return placed
