"""Records of loop transformations; bound inference and lowering replay them."""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.expr import IterVar

__all__ = ["Fuse", "Split"]


@dataclass(frozen=True)
class Split:
    """parent = outer * inner.extent + inner."""

    parent: IterVar
    outer: IterVar
    inner: IterVar


@dataclass(frozen=True)
class Fuse:
    """outer = fused // inner.extent, inner = fused % inner.extent."""

    outer: IterVar
    inner: IterVar
    fused: IterVar
