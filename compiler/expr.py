"""Expression nodes of the tensor-expression language and their dtype rules.

Nodes are frozen dataclasses so expressions can be shared, hashed and rewritten without
aliasing surprises. Iteration variables, tensors and operations compare by identity; every
other node compares structurally. dtypes are checked when a node is built, and each error
names the expression it came from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from vta.errors import ScheduleError

__all__ = [
    "COMPARISONS", "DTYPES", "BinOp", "Cast", "Cmp", "ComputeOp", "Const", "Expr", "IterVar", "PlaceholderOp",
    "Reduce", "Select", "Tensor", "TensorLoad", "as_expr", "binary", "check_dtype", "dtype_range",
    "make_cast", "walk",
]

# name -> (bits, signed); VTA works on integers only (spec §3.6).
DTYPES = {
    "int8": (8, True), "int16": (16, True), "int32": (32, True), "int64": (64, True),
    "uint8": (8, False), "uint16": (16, False), "uint32": (32, False),
}
_SHIFTS = {">>", "<<"}
# comparison operators and what they compute, element-wise on numpy arrays or on plain integers
COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
               "!=": np.not_equal, "&&": np.logical_and}
_CMPS = set(COMPARISONS)


def dtype_range(dtype: str) -> tuple[int, int]:
    """Smallest and largest value of an integer dtype."""
    bits, signed = DTYPES[dtype]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def check_dtype(dtype: object, where: str) -> str:
    if dtype not in DTYPES:
        raise ScheduleError(f"{where}: dtype {dtype!r} is not supported; allowed: {', '.join(DTYPES)}")
    return dtype  # type: ignore[return-value]


class Expr:
    """Base of expression nodes; operators build new nodes instead of computing values."""

    dtype: str

    def __add__(self, other: Any) -> Expr:
        return binary("+", self, other)

    def __radd__(self, other: Any) -> Expr:
        return binary("+", other, self)

    def __sub__(self, other: Any) -> Expr:
        return binary("-", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return binary("-", other, self)

    def __mul__(self, other: Any) -> Expr:
        return binary("*", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return binary("*", other, self)

    def __floordiv__(self, other: Any) -> Expr:
        return binary("//", self, other)

    def __mod__(self, other: Any) -> Expr:
        return binary("%", self, other)

    def __rshift__(self, other: Any) -> Expr:
        return binary(">>", self, other)

    def __lshift__(self, other: Any) -> Expr:
        return binary("<<", self, other)

    def __neg__(self) -> Expr:
        return binary("-", 0, self)

    def __lt__(self, other: Any) -> Expr:
        return binary("<", self, other)

    def __le__(self, other: Any) -> Expr:
        return binary("<=", self, other)

    def __gt__(self, other: Any) -> Expr:
        return binary(">", self, other)

    def __ge__(self, other: Any) -> Expr:
        return binary(">=", self, other)

    def __and__(self, other: Any) -> Expr:
        return binary("&&", self, other)

    def __bool__(self) -> bool:
        raise ScheduleError(f"expression {self} has no truth value while it is being built; use te.if_then_else")

    def __repr__(self) -> str:
        return str(self)

    def astype(self, dtype: str) -> Expr:
        """Cast to ``dtype`` (same as ``te.cast``)."""
        return make_cast(self, dtype)


@dataclass(frozen=True, repr=False)
class Const(Expr):
    value: int
    dtype: str = "int32"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, repr=False, eq=False)
class IterVar(Expr):
    """A loop variable over ``[0, extent)``; ``kind`` is "data", "reduce" or "thread"."""

    name: str
    extent: int | None
    kind: str = "data"
    tag: str = ""
    dtype: str = "int32"

    @property
    def dom(self) -> tuple[int, int | None]:
        """(min, extent) of the variable, as in TVM's ``IterVar.dom``."""
        return (0, self.extent)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class BinOp(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: str

    def __str__(self) -> str:
        if self.op in ("min", "max"):
            return f"{self.op}({self.a}, {self.b})"
        return f"({self.a} {self.op} {self.b})"


@dataclass(frozen=True, repr=False)
class Cmp(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: str = "bool"

    def __str__(self) -> str:
        return f"({self.a} {self.op} {self.b})"


@dataclass(frozen=True, repr=False)
class Cast(Expr):
    value: Expr
    dtype: str

    def __str__(self) -> str:
        return f"{self.dtype}({self.value})"


@dataclass(frozen=True, repr=False)
class Select(Expr):
    cond: Expr
    true_value: Expr
    false_value: Expr
    dtype: str

    def __str__(self) -> str:
        return f"select({self.cond}, {self.true_value}, {self.false_value})"


@dataclass(frozen=True, repr=False)
class TensorLoad(Expr):
    tensor: Tensor
    indices: tuple[Expr, ...]
    dtype: str

    def __str__(self) -> str:
        return f"{self.tensor.name}[{', '.join(map(str, self.indices))}]"


@dataclass(frozen=True, repr=False)
class Reduce(Expr):
    """A sum over ``axis``; only allowed as the outermost node of a compute body."""

    source: Expr
    axis: tuple[IterVar, ...]
    dtype: str

    def __str__(self) -> str:
        return f"sum({self.source}, axis=[{', '.join(v.name for v in self.axis)}])"


@dataclass(frozen=True, eq=False)
class PlaceholderOp:
    name: str
    shape: tuple[int, ...]
    dtype: str

    input_tensors: tuple[Tensor, ...] = ()


@dataclass(frozen=True, eq=False)
class ComputeOp:
    """out[axis] = body; ``attrs`` carries facts later passes use (e.g. pad widths)."""

    name: str
    axis: tuple[IterVar, ...]
    reduce_axis: tuple[IterVar, ...]
    body: Expr
    tag: str = ""
    attrs: tuple[tuple[str, Any], ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(v.extent) for v in self.axis)  # type: ignore[arg-type]

    @property
    def dtype(self) -> str:
        return self.body.dtype

    @functools.cached_property
    def input_tensors(self) -> tuple[Tensor, ...]:
        """Tensors the body reads, in first-read order (the body is immutable, so computed once)."""
        seen: dict[Tensor, None] = {}
        for node in walk(self.body):
            if isinstance(node, TensorLoad):
                seen.setdefault(node.tensor)
        return tuple(seen)

    def attr(self, key: str, default: Any = None) -> Any:
        return dict(self.attrs).get(key, default)


@dataclass(frozen=True)
class Tensor:
    """The single output of an operation; two tensors are equal when their op is the same."""

    op: PlaceholderOp | ComputeOp = field(repr=False)

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.op.shape

    @property
    def dtype(self) -> str:
        return self.op.dtype

    @property
    def ndim(self) -> int:
        return len(self.op.shape)

    def __repr__(self) -> str:
        return f"Tensor({self.name}, shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, indices: Any) -> TensorLoad:
        idx = tuple(indices) if isinstance(indices, tuple) else (indices,)
        exprs = tuple(as_expr(i, "int32", f"index of {self.name}") for i in idx)
        text = f"{self.name}[{', '.join(map(str, exprs))}]"
        if len(exprs) != self.ndim:
            raise ScheduleError(f"{text}: {self.name} has {self.ndim} dimensions, got {len(exprs)} indices")
        for dim, (e, n) in enumerate(zip(exprs, self.shape)):
            if e.dtype not in DTYPES:
                raise ScheduleError(f"{text}: index {dim} has dtype {e.dtype}, expected an integer")
            if isinstance(e, Const) and not 0 <= e.value < n:
                raise ScheduleError(f"{text}: index {dim} is {e.value}, outside [0, {n})")
        return TensorLoad(self, exprs, self.dtype)


def walk(expr: Expr):
    """Yield ``expr`` and every sub-expression, parents first (any Expr-valued dataclass field)."""
    yield expr
    if isinstance(expr, IterVar):
        return
    for f in fields(expr):  # type: ignore[arg-type]
        value = getattr(expr, f.name)
        if isinstance(value, Expr):
            yield from walk(value)
        elif isinstance(value, tuple):
            for v in value:
                if isinstance(v, Expr):
                    yield from walk(v)


def as_expr(value: Any, dtype: str, where: str) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, Tensor):
        raise ScheduleError(f"{where}: tensor {value.name} used as a value; index it, e.g. {value.name}[i]")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{where}: {value!r} is not an expression or an integer")
    lo, hi = dtype_range(dtype)
    if not lo <= value <= hi:
        raise ScheduleError(f"{where}: constant {value} does not fit {dtype} (range {lo}..{hi})")
    return Const(value, dtype)


def binary(op: str, a: Any, b: Any) -> Expr:
    def text() -> str:
        return f"({a} {op} {b})" if op not in ("min", "max") else f"{op}({a}, {b})"

    a_dtype = a.dtype if isinstance(a, Expr) else None
    b_dtype = b.dtype if isinstance(b, Expr) else None
    if op in _SHIFTS:
        ea = as_expr(a, b_dtype or "int32", text())
        eb = as_expr(b, "int32", text())
        if ea.dtype not in DTYPES or eb.dtype not in DTYPES:
            raise ScheduleError(f"{text()}: shift operands must be integers, got {ea.dtype} and {eb.dtype}")
        if isinstance(eb, Const) and not 0 <= eb.value < DTYPES[ea.dtype][0]:
            raise ScheduleError(f"{text()}: shift amount {eb.value} is outside [0, {DTYPES[ea.dtype][0]})")
        return BinOp(op, ea, eb, ea.dtype)
    ea = as_expr(a, b_dtype or "int32", text())
    eb = as_expr(b, a_dtype or "int32", text())
    if ea.dtype != eb.dtype:
        raise ScheduleError(f"{text()}: operand dtypes differ ({ea.dtype} vs {eb.dtype}); cast one side explicitly")
    if op == "&&":
        if ea.dtype != "bool":
            raise ScheduleError(f"{text()}: && needs conditions, got {ea.dtype}")
        return Cmp(op, ea, eb)
    if ea.dtype == "bool":
        raise ScheduleError(f"{text()}: arithmetic on a condition; use te.if_then_else")
    if op in _CMPS:
        return Cmp(op, ea, eb)
    if isinstance(eb, Const) and eb.value == 0 and op in ("//", "%"):
        raise ScheduleError(f"{text()}: division by zero")
    return BinOp(op, ea, eb, ea.dtype)




def make_cast(x: Any, dtype: str) -> Expr:
    """Cast node, or ``x`` itself when it already has ``dtype``."""
    x = as_expr(x, "int32", f"cast({x!r}, {dtype!r})")
    check_dtype(dtype, f"cast({x}, {dtype!r})")
    return x if x.dtype == dtype else Cast(x, dtype)
