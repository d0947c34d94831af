"""Bound inference: the tile each stage computes, given where it is attached.

A stage computed inside loop ``a`` of ``P`` only needs the part of its tensor that its
consumers read during one iteration of ``a``; that region's size is the SRAM tile it occupies
(spec §7.3, the "input tile / weight tile / output tile" of the tiler).
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.arith import interval, simplify, substitute
from vta.compiler.expr import BinOp, ComputeOp, Const, Expr, IterVar, TensorLoad, walk
from vta.compiler.schedule import Fuse, Schedule, Split, Stage
from vta.errors import ScheduleError

__all__ = ["StageBounds", "infer_bounds", "leaf_map", "vthread_copies"]


class _Outside(ScheduleError):
    """A consumer is not inside the loop a producer is computed at (may be fixed by a later compute_at)."""


@dataclass(frozen=True)
class StageBounds:
    """Per stage: ``region`` = (min, extent) per tensor dim, and the loops that sweep it."""

    region: tuple[tuple[Expr, int], ...]
    leaf_extent: dict[IterVar, int]
    root_value: dict[IterVar, Expr]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(e for _, e in self.region)


def leaf_map(stage: Stage, root_extent: dict[IterVar, int]) -> tuple[dict[IterVar, int], dict[IterVar, Expr]]:
    """Leaf extents from root extents, and each root axis as an expression of the leaves.

    Split inner extents are the recorded factors; a tile that the factor no longer divides
    (because bound inference shrank the axis) is refused.
    """
    extent = dict(root_extent)
    for rel in stage.relations:
        if isinstance(rel, Split):
            n, f = extent[rel.parent], rel.inner.extent
            if n % f:
                raise ScheduleError(f"stage {stage.name}: split of {rel.parent.name}: factor {f} does not divide "
                                    f"the inferred extent {n}")
            extent[rel.outer], extent[rel.inner] = n // f, f
        else:
            extent[rel.fused] = extent[rel.outer] * extent[rel.inner]
    value: dict[IterVar, Expr] = {v: v for v in stage.leaf_iter_vars}
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            value[rel.parent] = value[rel.outer] * Const(extent[rel.inner]) + value[rel.inner]
        elif isinstance(rel, Fuse):
            n = Const(extent[rel.inner])
            value[rel.outer] = BinOp("//", value[rel.fused], n, "int32")
            value[rel.inner] = BinOp("%", value[rel.fused], n, "int32")
    return {v: extent[v] for v in stage.leaf_iter_vars}, {v: simplify(e) for v, e in value.items()}


def vthread_copies(stage: Stage) -> int:
    """Copies of a stage's buffer: one per virtual thread of the loops it is computed inside (spec §7.4)."""
    copies, cur = 1, stage
    while cur.attach is not None:
        parent, axis = cur.attach
        pos = parent.leaf_iter_vars.index(axis)
        for v in parent.leaf_iter_vars[:pos + 1]:
            if v in parent.binds:
                copies *= v.extent
        cur = parent
    return copies


def _consumers(schedule: Schedule, stage: Stage) -> list[Stage]:
    tensor_op = stage.origin_op
    return [s for s in schedule.stages
            if not s.is_placeholder and any(t.op is tensor_op for t in s.op.input_tensors)]


def _varying(consumer: Stage, target: Stage, bounds: dict[Stage, StageBounds]) -> dict[IterVar, int]:
    """Loops of ``consumer`` (and the stages between) that sweep during one iteration of target.attach.

    Raises _Outside when the consumer is not (yet) computed inside that loop.
    """
    parent, axis = target.attach  # type: ignore[misc]
    pos = parent.leaf_iter_vars.index(axis)
    varying: dict[IterVar, int] = {}
    cur = consumer
    while cur is not parent:
        varying.update(bounds[cur].leaf_extent)
        if cur.attach is None or (cur.attach[0] is parent and parent.leaf_iter_vars.index(cur.attach[1]) < pos):
            raise _Outside(
                f"stage {target.name}: compute_at({parent.name}, {axis.name}): its consumer {consumer.name} "
                f"runs outside that loop; compute it at the same loop or inside it")
        cur = cur.attach[0]
    extent = bounds[parent].leaf_extent
    varying.update({v: extent[v] for v in parent.leaf_iter_vars[pos + 1:]})
    return varying


def _read_region(stage: Stage, consumer: Stage, bounds: dict[Stage, StageBounds]) -> list[tuple[Expr, int]]:
    cb = bounds[consumer]
    absolute = {v: simplify(mn + cb.root_value[v]) for v, (mn, _) in zip(consumer.op.axis, cb.region)}
    absolute.update({v: cb.root_value[v] for v in consumer.op.reduce_axis})
    varying = _varying(consumer, stage, bounds)
    where = f"stage {stage.name} read by {consumer.name}"
    region: list[tuple[Expr, int]] | None = None
    for node in walk(consumer.op.body):
        if not (isinstance(node, TensorLoad) and node.tensor.op is stage.origin_op):
            continue
        dims = [interval(substitute(i, absolute), varying, where) for i in node.indices]
        region = dims if region is None else [_union(a, b, where) for a, b in zip(region, dims)]
    assert region is not None
    return region


def _union(a: tuple[Expr, int], b: tuple[Expr, int], where: str) -> tuple[Expr, int]:
    delta = simplify(b[0] - a[0])
    if not isinstance(delta, Const):
        raise ScheduleError(f"{where}: two reads start at {a[0]} and {b[0]}; cannot cover both with one tile")
    lo = min(0, delta.value)
    hi = max(a[1], delta.value + b[1])
    return (a[0] if lo == 0 else b[0]), hi - lo


def infer_bounds(schedule: Schedule, strict: bool = True) -> dict[Stage, StageBounds]:
    """Bounds of every computed stage, consumers first.

    Without ``strict``, stages whose consumers are not yet placed inside their loop (the
    schedule is still being built) are left out instead of refused.

    Raises
    ------
    ScheduleError
        If a stage is attached where a consumer cannot see it, or a read is not boundable.
    """
    bounds: dict[Stage, StageBounds] = {}
    pending = [s for s in schedule.stages if not s.is_placeholder]
    while pending:
        ready = [s for s in pending if s.attach is None or _deps_done(schedule, s, bounds)]
        if not ready:
            if strict:
                raise ScheduleError(f"stages {[s.name for s in pending]} are attached in a cycle")
            break
        for stage in ready:
            pending.remove(stage)
            try:
                bounds[stage] = _stage_bounds(schedule, stage, bounds)
            except _Outside:
                if strict:
                    raise
    return bounds


def _deps_done(schedule: Schedule, stage: Stage, bounds: dict[Stage, StageBounds]) -> bool:
    needed = _consumers(schedule, stage) + _attach_chain(stage)
    return all(s in bounds for s in needed)


def _attach_chain(stage: Stage) -> list[Stage]:
    chain, cur = [], stage
    while cur.attach is not None:
        cur = cur.attach[0]
        chain.append(cur)
    return chain


def _stage_bounds(schedule: Schedule, stage: Stage, bounds: dict[Stage, StageBounds]) -> StageBounds:
    op = stage.op
    assert isinstance(op, ComputeOp)
    if stage.attach is None:
        region = tuple((Const(0), n) for n in op.shape)
    else:
        consumers = _consumers(schedule, stage)
        if not consumers:
            raise ScheduleError(f"stage {stage.name}: computed inside {stage.attach[0].name} but nothing reads it")
        region = None
        for c in consumers:
            dims = _read_region(stage, c, bounds)
            where = f"stage {stage.name}"
            region = dims if region is None else [_union(a, b, where) for a, b in zip(region, dims)]
        region = tuple((mn, min(ext, n)) for (mn, ext), n in zip(region, op.shape))
    root_extent = {v: ext for v, (_, ext) in zip(op.axis, region)}
    root_extent.update({v: v.extent for v in op.reduce_axis})
    leaf_extent, value = leaf_map(stage, root_extent)
    return StageBounds(region, leaf_extent, value)
