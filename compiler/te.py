"""Tensor expressions: what an operator computes, kept apart from how it is scheduled.

The public builders (``placeholder``, ``compute``, ``sum``...) follow TVM's ``te`` names and
argument order; the node classes live in :mod:`vta.compiler.expr` and are re-exported here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from vta.compiler.expr import (
    DTYPES,
    BinOp,
    Cast,
    Cmp,
    ComputeOp,
    Const,
    Expr,
    IterVar,
    PlaceholderOp,
    Reduce,
    Select,
    Tensor,
    TensorLoad,
    as_expr,
    binary,
    check_dtype,
    dtype_range,
    make_cast,
    walk,
)
from vta.errors import ScheduleError

__all__ = [
    "DTYPES", "BinOp", "Cast", "Cmp", "ComputeOp", "Const", "Expr", "IterVar", "PlaceholderOp", "Reduce",
    "Select", "Tensor", "TensorLoad", "cast", "clip", "compute", "const", "dtype_range", "if_then_else",
    "max", "min", "pad", "placeholder", "reduce_axis", "sum", "thread_axis",
]


def const(value: int, dtype: str = "int32") -> Const:
    """An integer constant, range-checked against ``dtype``."""
    check_dtype(dtype, f"const({value!r})")
    lo, hi = dtype_range(dtype)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ScheduleError(f"const({value!r}, {dtype!r}): expected an integer in [{lo}, {hi}]")
    return Const(value, dtype)


def min(a: Expr | int, b: Expr | int) -> Expr:
    """Element-wise minimum (the ALU MIN opcode).

    Parameters
    ----------
    a, b
        Expressions of the same dtype, or one integer constant.

    Returns
    -------
    Expr

    Raises
    ------
    ScheduleError
        If the dtypes differ or a constant does not fit the other side's dtype.

    Examples
    --------
    >>> x = placeholder((16,), "int32", "x")
    >>> str(min(x[0], 127))
    'min(x[0], 127)'
    """
    return binary("min", a, b)


def max(a: Expr | int, b: Expr | int) -> Expr:
    """Element-wise maximum (the ALU MAX opcode); see :func:`min` for the rules."""
    return binary("max", a, b)


def clip(x: Expr, lo: int, hi: int) -> Expr:
    """Clamp to ``[lo, hi]`` as MIN then MAX, the two ALU ops VTA has for it (spec §2.7).

    Examples
    --------
    >>> x = placeholder((16,), "int32", "x")
    >>> str(clip(x[0], 0, 127))
    'max(min(x[0], 127), 0)'
    """
    if lo > hi:
        raise ScheduleError(f"clip({x}, {lo}, {hi}): lower bound is above the upper bound")
    return max(min(x, hi), lo)


def cast(x: Expr, dtype: str) -> Expr:
    """Convert to ``dtype``; narrowing keeps the low bits, as the STORE unit does (spec §3.5).

    Examples
    --------
    >>> x = placeholder((16,), "int8", "x")
    >>> cast(x[0], "int32").dtype
    'int32'
    """
    return make_cast(x, dtype)


def if_then_else(cond: Expr, true_value: Any, false_value: Any) -> Expr:
    """``true_value`` where ``cond`` holds, else ``false_value`` (used by :func:`pad`)."""
    where = f"if_then_else({cond}, {true_value}, {false_value})"
    if not isinstance(cond, Expr) or cond.dtype != "bool":
        raise ScheduleError(f"{where}: the condition must be a comparison")
    t = as_expr(true_value, getattr(false_value, "dtype", "int32"), where)
    f = as_expr(false_value, t.dtype, where)
    if t.dtype != f.dtype:
        raise ScheduleError(f"{where}: branch dtypes differ ({t.dtype} vs {f.dtype})")
    return Select(cond, t, f, t.dtype)


def _check_shape(shape: Sequence[int], where: str) -> tuple[int, ...]:
    if isinstance(shape, int) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ScheduleError(f"{where}: shape must be a sequence of positive integers, got {shape!r}")
    return tuple(shape)


def placeholder(shape: Sequence[int], dtype: str = "int32", name: str = "placeholder") -> Tensor:
    """An input tensor; its data is bound when the program is launched.

    Parameters
    ----------
    shape
        Positive extents, outermost first.
    dtype
        One of :data:`DTYPES`.
    name
        Used in dumps and error messages.

    Returns
    -------
    Tensor

    Raises
    ------
    ScheduleError
        If the shape is not positive integers or the dtype is unknown.

    Examples
    --------
    >>> A = placeholder((1, 4, 1, 16), "int8", "A")
    >>> A.shape
    (1, 4, 1, 16)
    """
    where = f"placeholder {name!r}"
    return Tensor(PlaceholderOp(name, _check_shape(shape, where), check_dtype(dtype, where)))


def reduce_axis(dom: tuple[int, int], name: str = "rv") -> IterVar:
    """A reduction variable over ``range(*dom)``; only ``lo == 0`` is supported.

    Examples
    --------
    >>> k = reduce_axis((0, 16), "k")
    >>> k.extent
    16
    """
    lo, hi = dom
    if lo != 0 or not isinstance(hi, int) or hi <= 0:
        raise ScheduleError(f"reduce_axis({dom!r}, {name!r}): expected (0, extent) with extent > 0")
    return IterVar(name, hi, "reduce")


def thread_axis(tag: str = "cthread", name: str = "") -> IterVar:
    """A virtual-thread axis to ``bind`` a loop to; "cthread" is the only tag VTA has (spec §7.4).

    Examples
    --------
    >>> thread_axis("cthread").kind
    'thread'
    """
    if tag != "cthread":
        raise ScheduleError(f"thread_axis({tag!r}): only 'cthread' (virtual threads) exists on VTA")
    return IterVar(name or tag, None, "thread", tag)


def sum(expr: Expr, axis: IterVar | Sequence[IterVar]) -> Reduce:
    """Sum ``expr`` over reduction axes; the result keeps ``expr``'s dtype (cast first to widen).

    Parameters
    ----------
    expr
        The summand.
    axis
        One reduce axis or a list of them (from :func:`reduce_axis`).

    Returns
    -------
    Reduce

    Raises
    ------
    ScheduleError
        If an axis is not a reduce axis or is repeated.

    Examples
    --------
    >>> A = placeholder((4, 16), "int8", "A")
    >>> k = reduce_axis((0, 16), "k")
    >>> str(sum(A[0, k].astype("int32"), axis=k))
    'sum(int32(A[0, k]), axis=[k])'
    """
    axes = (axis,) if isinstance(axis, IterVar) else tuple(axis)
    expr = as_expr(expr, "int32", "sum")
    where = f"sum({expr}, axis=[{', '.join(map(str, axes))}])"
    bad = [v for v in axes if not isinstance(v, IterVar) or v.kind != "reduce"]
    if bad or not axes:
        raise ScheduleError(f"{where}: axis must be reduce_axis variables, got {bad or 'none'}")
    if len(set(axes)) != len(axes):
        raise ScheduleError(f"{where}: an axis is listed twice")
    return Reduce(expr, axes, expr.dtype)


def compute(shape: Sequence[int], fcompute: Callable[..., Any], name: str = "compute", tag: str = "",
            attrs: dict[str, Any] | None = None) -> Tensor:
    """Define ``out[i, j, ...] = fcompute(i, j, ...)`` over ``shape``.

    Parameters
    ----------
    shape
        Output extents; one argument of ``fcompute`` per dimension (its names name the axes).
    fcompute
        Index lambda returning an expression; a :func:`sum` may only be the outermost node.
    name, tag
        Used in dumps and by operator schedules to find stages.
    attrs
        Facts for later passes (e.g. pad widths).

    Returns
    -------
    Tensor

    Raises
    ------
    ScheduleError
        If the body uses a variable this compute does not bind, nests a sum, or mixes dtypes.

    Examples
    --------
    >>> A = placeholder((8,), "int32", "A")
    >>> B = compute((8,), lambda i: A[i] >> 2, name="B")
    >>> str(B.op.body)
    '(A[i] >> 2)'
    """
    shape = _check_shape(shape, f"compute {name!r}")
    params = _axis_names(fcompute, len(shape))
    if len(params) != len(shape):
        raise ScheduleError(f"compute {name!r}: fcompute takes {len(params)} arguments for a {len(shape)}-d shape")
    axis = tuple(IterVar(p, n) for p, n in zip(params, shape))
    body = as_expr(fcompute(*axis), "int32", f"compute {name!r}")
    _check_body(name, body, axis)
    reduce = body.axis if isinstance(body, Reduce) else ()
    return Tensor(ComputeOp(name, axis, reduce, body, tag, tuple((attrs or {}).items())))


def _axis_names(fcompute: Callable[..., Any], ndim: int) -> list[str]:
    params = inspect.signature(fcompute).parameters.values()
    star = [p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL]
    if star:
        return [f"{star[0]}{d}" for d in range(ndim)]
    return [p.name for p in params]


def _check_body(name: str, body: Expr, axis: tuple[IterVar, ...]) -> None:
    bound = set(axis) | set(body.axis if isinstance(body, Reduce) else ())
    for node in walk(body):
        if isinstance(node, Reduce) and node is not body:
            raise ScheduleError(f"compute {name!r}: {node} must be the outermost expression of the body")
        if isinstance(node, IterVar) and node not in bound:
            raise ScheduleError(f"compute {name!r}: {body} uses variable {node.name} which this compute does not bind")
    if body.dtype == "bool":
        raise ScheduleError(f"compute {name!r}: body {body} is a condition, not a value")


def pad(data: Tensor, pad_before: Sequence[int], pad_after: Sequence[int] | None = None,
        name: str = "pad") -> Tensor:
    """Zero-pad ``data``; the pad value is always 0 because the LOAD unit only inserts zeros (spec §3.2).

    Parameters
    ----------
    data
        Tensor to pad.
    pad_before, pad_after
        Elements added before/after each dimension (``pad_after`` defaults to ``pad_before``).

    Returns
    -------
    Tensor
        With ``attrs`` ``pad_before``/``pad_after`` so lowering can fold the padding into a DMA load.

    Raises
    ------
    ScheduleError
        If the widths do not match the rank or are negative.

    Examples
    --------
    >>> A = placeholder((1, 1, 4, 4, 1, 16), "int8", "A")
    >>> pad(A, (0, 0, 1, 1, 0, 0)).shape
    (1, 1, 6, 6, 1, 16)
    """
    before = tuple(pad_before)
    after = tuple(pad_after) if pad_after is not None else before
    if len(before) != data.ndim or len(after) != data.ndim or any(p < 0 for p in before + after):
        raise ScheduleError(
            f"pad({data.name}, {before}, {after}): need {data.ndim} non-negative widths before and after")
    shape = tuple(n + b + a for n, b, a in zip(data.shape, before, after))

    def body(*idx: IterVar) -> Expr:
        cond = None
        src = data[tuple(i - b if b else i for i, b in zip(idx, before))]
        conds = [c for i, n, b, a in zip(idx, data.shape, before, after) if b or a
                 for c in ((i >= b), (i < b + n))]
        for c in conds:
            cond = c if cond is None else cond & c
        return src if cond is None else if_then_else(cond, src, 0)

    return compute(shape, body, name, "pad", {"pad_before": before, "pad_after": after})
