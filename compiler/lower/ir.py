"""The loop-nest IR that lowering passes rewrite, and its readable text dump.

Statements are frozen dataclasses; buffers compare by identity. Buffer indices are
multi-dimensional; an SRAM buffer's last two dims form one entry (spec §2.10).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vta.compiler.expr import Expr, IterVar

__all__ = ["Allocate", "Buffer", "BufferLoad", "For", "Gemm", "LoweredFunc", "Pragma", "Seq", "Stmt", "Store",
           "dump", "leaf_statements"]


@dataclass(frozen=True, eq=False)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scope: str = "global"

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(map(str, self.shape))}] @{self.scope}"


@dataclass(frozen=True, repr=False)
class BufferLoad(Expr):
    buffer: Buffer
    indices: tuple[Expr, ...]
    dtype: str

    def __str__(self) -> str:
        return f"{self.buffer.name}[{', '.join(map(str, self.indices))}]"


class Stmt:
    """Base of statements."""

    def __str__(self) -> str:
        return "\n".join(dump(self))


@dataclass(frozen=True, repr=False)
class Store(Stmt):
    buffer: Buffer
    indices: tuple[Expr, ...]
    value: Expr


@dataclass(frozen=True, repr=False)
class For(Stmt):
    var: IterVar
    extent: int
    body: Stmt
    kind: str = "serial"  # or "vthread"


@dataclass(frozen=True, repr=False)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, repr=False)
class Allocate(Stmt):
    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, repr=False)
class Pragma(Stmt):
    key: str
    body: Stmt


@dataclass(frozen=True, repr=False)
class Gemm(Stmt):
    """One GEMM intrinsic call on whole SRAM entries (indices of the entry's first element)."""

    acc: BufferLoad
    inp: BufferLoad | None
    wgt: BufferLoad | None
    reset: bool = False


@dataclass(frozen=True)
class LoweredFunc:
    name: str
    params: tuple[Buffer, ...]
    body: Stmt

    def __str__(self) -> str:
        head = f"func {self.name}({', '.join(map(str, self.params))}) {{"
        return "\n".join([head, *dump(self.body, 1), "}"])


def leaf_statements(stmt: Stmt, pragma: str | None = None) -> Iterator[tuple[Stmt, str | None]]:
    """Every Store and Gemm under ``stmt`` in program order, with the key of the innermost pragma around it."""
    if isinstance(stmt, Seq):
        for s in stmt.stmts:
            yield from leaf_statements(s, pragma)
    elif isinstance(stmt, Pragma):
        yield from leaf_statements(stmt.body, stmt.key)
    elif isinstance(stmt, (For, Allocate)):
        yield from leaf_statements(stmt.body, pragma)
    else:
        yield stmt, pragma


def dump(stmt: Stmt, depth: int = 0) -> list[str]:
    """Lines of a readable listing, two spaces per nesting level."""
    pad = "  " * depth
    if isinstance(stmt, Seq):
        return [line for s in stmt.stmts for line in dump(s, depth)]
    if isinstance(stmt, For):
        kind = " vthread" if stmt.kind == "vthread" else ""
        return [f"{pad}for{kind} {stmt.var.name} in 0..{stmt.extent} {{", *dump(stmt.body, depth + 1), f"{pad}}}"]
    if isinstance(stmt, Allocate):
        return [f"{pad}alloc {stmt.buffer}", *dump(stmt.body, depth)]
    if isinstance(stmt, Pragma):
        return [f"{pad}// pragma {stmt.key}", *dump(stmt.body, depth)]
    if isinstance(stmt, Store):
        return [f"{pad}{stmt.buffer.name}[{', '.join(map(str, stmt.indices))}] = {stmt.value}"]
    if isinstance(stmt, Gemm):
        if stmt.reset:
            return [f"{pad}gemm.reset({stmt.acc})"]
        return [f"{pad}gemm({stmt.acc} += {stmt.inp} x {stmt.wgt})"]
    raise TypeError(f"unknown statement {type(stmt).__name__}")
