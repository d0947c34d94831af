"""Integer index arithmetic: substitution, affine forms, simplification and bounds.

VTA addresses are affine in loop variables (DMA strides, micro-op factors, spec §2.5), so the
compiler reasons about index expressions as ``{var: coefficient}`` maps plus a constant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from vta.compiler.expr import BinOp, Cast, Const, Expr, IterVar
from vta.errors import ScheduleError

__all__ = ["Affine", "affine", "from_affine", "interval", "row_major", "simplify", "strip_cast", "substitute",
           "transform"]

# {var: coefficient, None: constant}
Affine = dict


def transform(expr: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``expr`` bottom-up; ``fn`` may return a replacement for a node (or None to keep it)."""
    hit = fn(expr)
    if hit is not None:
        return hit
    if isinstance(expr, IterVar) or not dataclasses.is_dataclass(expr):
        return expr
    changes = {}
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, Expr) and not isinstance(value, IterVar):
            new = transform(value, fn)
        elif isinstance(value, IterVar):
            hit = fn(value)
            new = value if hit is None else hit
        elif isinstance(value, tuple) and value and all(isinstance(v, Expr) for v in value):
            new = tuple(transform(v, fn) for v in value)
        else:
            continue
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(expr, **changes) if changes else expr


def substitute(expr: Expr, mapping: dict[IterVar, Expr]) -> Expr:
    """Replace variables by expressions."""
    return transform(expr, lambda e: mapping.get(e) if isinstance(e, IterVar) else None)


def affine(expr: Expr) -> Affine | None:
    """``expr`` as ``{var: coef, None: const}``, or None when it is not affine."""
    if isinstance(expr, Const):
        return {None: expr.value}
    if isinstance(expr, IterVar):
        return {expr: 1}
    if not isinstance(expr, BinOp) or expr.op not in ("+", "-", "*"):
        return None
    a, b = affine(expr.a), affine(expr.b)
    if a is None or b is None:
        return None
    if expr.op == "*":
        if set(a) <= {None}:
            a, b = b, a
        if not set(b) <= {None}:
            return None
        k = b.get(None, 0)
        return {v: c * k for v, c in a.items() if c * k}
    sign = 1 if expr.op == "+" else -1
    out = dict(a)
    for v, c in b.items():
        out[v] = out.get(v, 0) + sign * c
    return {v: c for v, c in out.items() if c}


def from_affine(form: Affine) -> Expr:
    """Build the canonical expression of an affine form: ``c0*v0 + c1*v1 + ... + const``."""
    out: Expr | None = None
    for v, c in form.items():
        if v is None or c == 0:
            continue
        term: Expr = v if abs(c) == 1 else BinOp("*", v, Const(abs(c)), "int32")
        if out is None:
            out = term if c > 0 else BinOp("-", Const(0), term, "int32")
        else:
            out = BinOp("+" if c > 0 else "-", out, term, "int32")
    k = form.get(None, 0)
    if out is None:
        return Const(k)
    if k:
        out = BinOp("+" if k > 0 else "-", out, Const(abs(k)), "int32")
    return out


def _fold(op: str, a: int, b: int) -> int | None:
    table = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "min": lambda: min(a, b),
        "max": lambda: max(a, b), "//": lambda: a // b if b else None, "%": lambda: a % b if b else None,
        ">>": lambda: a >> b if b >= 0 else None, "<<": lambda: a << b if b >= 0 else None,
    }
    return table[op]() if op in table else None


def simplify(expr: Expr) -> Expr:
    """Fold constants and put int32 affine sub-expressions in canonical form."""

    def step(e: Expr) -> Expr | None:
        if not isinstance(e, BinOp):
            return None
        a, b = simplify(e.a), simplify(e.b)
        if isinstance(a, Const) and isinstance(b, Const):
            v = _fold(e.op, a.value, b.value)
            if v is not None and e.dtype == "int32" and -(1 << 31) <= v < (1 << 31):
                return Const(v, e.dtype)
        if e.op in ("//", "%") and isinstance(b, Const) and b.value == 1:
            return a if e.op == "//" else Const(0, e.dtype)
        node = BinOp(e.op, a, b, e.dtype)
        form = affine(node) if e.dtype == "int32" else None
        return from_affine(form) if form is not None else node

    if isinstance(expr, Cast) and isinstance(expr.value, Const):
        return expr
    return transform(expr, step)


def interval(expr: Expr, varying: dict[IterVar, int], where: str) -> tuple[Expr, int]:
    """(min, extent) of ``expr`` while each ``varying`` var sweeps ``[0, extent)``.

    Other variables stay symbolic, so ``min`` is an expression in the loops outside; the extent
    must come out as a constant because SRAM tiles have a fixed size.
    """
    form = affine(simplify(expr))
    if form is not None:
        lo = {v: c for v, c in form.items() if v not in varying}
        extent = 1
        for v, c in form.items():
            if v in varying:
                extent += abs(c) * (varying[v] - 1)
                if c < 0:
                    lo[None] = lo.get(None, 0) + c * (varying[v] - 1)
        return simplify(from_affine(lo)), extent
    if isinstance(expr, BinOp) and expr.op in ("//", "%") and isinstance(expr.b, Const):
        return _div_interval(expr, varying, where)
    raise ScheduleError(f"{where}: cannot bound index {expr}: it is not affine in the loop variables")


def _div_interval(expr: BinOp, varying: dict[IterVar, int], where: str) -> tuple[Expr, int]:
    lo, ext = interval(expr.a, varying, where)
    k = expr.b.value  # type: ignore[attr-defined]
    if ext == 1:
        return simplify(BinOp(expr.op, lo, expr.b, "int32")), 1
    if expr.op == "//":
        if isinstance(lo, Const):
            return Const(lo.value // k), (lo.value + ext - 1) // k - lo.value // k + 1
        return simplify(BinOp("//", lo, expr.b, "int32")), (ext - 1) // k + 2
    if isinstance(lo, Const) and lo.value % k + ext <= k:
        return Const(lo.value % k), ext
    return Const(0), k


def row_major(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Element steps of each dimension of a C-order array of ``shape``."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= n
    return list(reversed(out))


def strip_cast(e: Expr) -> Expr:
    """``e`` without an outer cast: a copy or ALU operand read as another width is the same element."""
    return e.value if isinstance(e, Cast) else e
