"""Index expressions evaluated under concrete outer loops: affine forms over the loops VTA folds.

Code generation unrolls the loops that stay on the host (control loops, virtual threads) and
folds the rest into DMA geometry or micro-op loops, which need addresses affine in those loop
variables (spec §2.4-2.5). An :class:`Index` precomputes the affine form once so that each
unrolled instance only adds constants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vta.compiler.arith import affine, simplify, substitute
from vta.compiler.expr import Const, Expr, IterVar
from vta.errors import LoweringError

__all__ = ["EntryForm", "Form", "Index", "entry_form"]

Form = dict  # {IterVar: coefficient, None: constant}


class Index:
    """One index expression; ``bind(env)`` is its affine form with ``env``'s variables fixed."""

    def __init__(self, expr: Expr, where: str) -> None:
        self.expr = expr
        self.where = where
        self.form = affine(simplify(expr))

    def bind(self, env: Mapping[IterVar, int]) -> Form:
        if self.form is not None:
            out: Form = {None: self.form.get(None, 0)}
            for v, c in self.form.items():
                if v is None:
                    continue
                if v in env:
                    out[None] += c * env[v]
                else:
                    out[v] = c
            return out
        bound = simplify(substitute(self.expr, {v: Const(x) for v, x in env.items()}))
        form = affine(bound)
        if form is None:
            raise LoweringError(f"{self.where}: index {self.expr} is not affine in the loops VTA folds into one "
                                f"instruction ({bound} after fixing the outer loops)")
        return {None: form.get(None, 0), **{v: c for v, c in form.items() if v is not None}}


class EntryForm:
    """``start + sum(index_d * stride_d)`` for fixed indices and strides: when every index is affine,
    their weighted sum is combined once and each instance binds a single form."""

    def __init__(self, indices: Sequence[Index], strides: Sequence[int]) -> None:
        self.indices, self.strides = list(indices), list(strides)
        self.combined: Form | None = None
        if all(idx.form is not None for idx in self.indices):
            out: Form = {None: 0}
            for idx, stride in zip(self.indices, self.strides):
                for v, c in idx.form.items():
                    out[v] = out.get(v, 0) + c * stride
            self.combined = out

    def __call__(self, start: int, env: Mapping[IterVar, int]) -> Form:
        if self.combined is None:
            return entry_form(self.indices, self.strides, start, env)
        out: Form = {None: start + self.combined[None]}
        for v, c in self.combined.items():
            if v is None or not c:
                continue
            if v in env:
                out[None] += c * env[v]
            else:
                out[v] = out.get(v, 0) + c
        return out


def entry_form(indices: Sequence[Index], strides: Sequence[int], start: int, env: Mapping[IterVar, int]) -> Form:
    """Affine form of an entry number: ``start + sum(index_d * stride_d)``."""
    out: Form = {None: start}
    for idx, stride in zip(indices, strides):
        if not stride:
            continue
        for v, c in idx.bind(env).items():
            out[v] = out.get(v, 0) + c * stride
    return {v: c for v, c in out.items() if c or v is None}
