"""Schedules: how a tensor expression maps onto VTA's loops, SRAM buffers and units.

Primitives follow TVM's names, argument order and return order. Each one records a
transformation and checks it at once, so a schedule the hardware cannot run fails at the
call that made it so (spec §7.2-§7.4). Decisions, documented here once:

* ``split`` and ``tile`` need factors that divide the extent: VTA loop nests have no tail
  guards (DMA sizes and micro-op loops are fixed per kernel).
* SRAM tiles, ALU kernels and tensorized regions are re-checked after every primitive once
  the stages they depend on are attached (see :mod:`vta.compiler.check`), and checked in full
  when the schedule is lowered.
"""

from __future__ import annotations

from collections.abc import Sequence

from vta.compiler.arith import substitute, transform
from vta.compiler.expr import ComputeOp, IterVar, PlaceholderOp, Reduce, Tensor, TensorLoad
from vta.compiler.relations import Fuse, Split
from vta.compiler.stage import PRAGMAS, SCOPES, Stage, check_scope
from vta.errors import ScheduleError

__all__ = ["PRAGMAS", "SCOPES", "Fuse", "Schedule", "Split", "Stage", "create_schedule"]


class Schedule:
    """The stages of a computation in producer-before-consumer order."""

    def __init__(self, outputs: Sequence[Tensor]) -> None:
        self.outputs = list(outputs)
        self.stages: list[Stage] = []
        self.stage_map: dict[object, Stage] = {}
        for op in _topo_order([t.op for t in self.outputs]):
            self._add(Stage(op, self), len(self.stages))
        self.output_stages = [self.stage_map[t.op] for t in self.outputs]

    def _add(self, stage: Stage, pos: int) -> Stage:
        self.stages.insert(pos, stage)
        self.stage_map[stage.op] = stage
        return stage

    def __getitem__(self, key: Tensor | ComputeOp | PlaceholderOp) -> Stage:
        op = key.op if isinstance(key, Tensor) else key
        if op not in self.stage_map:
            raise ScheduleError(f"{getattr(op, 'name', op)!s} is not part of this schedule")
        return self.stage_map[op]

    def recheck(self) -> None:
        """Re-run the whole-schedule checks on the attached parts (raises ScheduleError)."""
        from vta.compiler.check import check_schedule

        check_schedule(self, strict=False)

    def cache_read(self, tensor: Tensor, scope: str, readers: Sequence[Tensor]) -> Tensor:
        """Copy ``tensor`` into ``scope`` and make ``readers`` read the copy.

        Returns
        -------
        Tensor
            The cached tensor (its stage is placed right after the producer).

        Raises
        ------
        ScheduleError
            If a reader does not read ``tensor`` or the scope does not fit the tensor.

        Examples
        --------
        >>> from vta.compiler import te
        >>> A = te.placeholder((4, 1, 16), "int8", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c].astype("int32"), "B")
        >>> s = create_schedule(B)
        >>> s.cache_read(A, "local.inp_buffer", [B]).name
        'A.local.inp_buffer'
        """
        src = self[tensor]
        check_scope(f"{tensor.name}.{scope}", tensor.shape, tensor.dtype, scope)
        cache = compute_copy(tensor, f"{tensor.name}.{scope}")
        for reader in readers:
            stage = self[reader]
            if tensor not in stage.op.input_tensors:
                raise ScheduleError(f"cache_read({tensor.name}, {scope!r}): {reader.name} does not read {tensor.name}")
            body = _replace_tensor(stage.op.body, tensor, cache)
            stage.op = _with_body(stage.op, body)
            self.stage_map[stage.op] = stage
        new = self._add(Stage(cache.op, self), self.stages.index(src) + 1)
        new.scope = scope
        self.recheck()
        return cache

    def cache_write(self, tensor: Tensor, scope: str) -> Tensor:
        """Compute ``tensor`` into ``scope`` first; its own stage becomes the copy out.

        Returns
        -------
        Tensor
            The cache, whose stage has fresh axes (``s[cache].op.axis``).

        Raises
        ------
        ScheduleError
            If the stage was already transformed or the scope does not fit.

        Examples
        --------
        >>> from vta.compiler import te
        >>> A = te.placeholder((4, 1, 16), "int32", "A")
        >>> B = te.compute((4, 1, 16), lambda i, b, c: A[i, b, c] + 1, "B")
        >>> s = create_schedule(B)
        >>> s.cache_write(B, "local.acc_buffer").name
        'B.local.acc_buffer'
        """
        stage = self[tensor]
        what = f"cache_write({tensor.name}, {scope!r})"
        if stage.is_placeholder or stage.relations or stage.attach or stage.pragmas or stage.tensorized:
            raise ScheduleError(f"stage {stage.name}: {what}: call cache_write before transforming the stage")
        check_scope(f"{tensor.name}.{scope}", tensor.shape, tensor.dtype, scope)
        op = stage.op
        fresh = {v: IterVar(v.name, v.extent, v.kind) for v in op.axis + op.reduce_axis}
        body = substitute(op.body, fresh)
        cache_op = ComputeOp(f"{op.name}.{scope}", tuple(fresh[v] for v in op.axis),
                             tuple(fresh[v] for v in op.reduce_axis), body, op.tag, op.attrs)
        cache = Tensor(cache_op)
        stage.op = ComputeOp(op.name, op.axis, (), cache[op.axis], "", ())
        stage.binds.clear()
        stage._reset_axes()
        self.stage_map[stage.op] = stage
        new = self._add(Stage(cache_op, self), self.stages.index(stage))
        new.scope = scope
        self.recheck()
        return cache


def compute_copy(tensor: Tensor, name: str) -> Tensor:
    """A stage that copies ``tensor`` element by element (what a DMA transfer does)."""
    from vta.compiler.te import compute

    return compute(tensor.shape, lambda *i: tensor[i], name, "copy")


def _replace_tensor(body, old: Tensor, new: Tensor):
    def fn(e):
        if isinstance(e, TensorLoad) and e.tensor == old:
            return TensorLoad(new, tuple(_replace_tensor(i, old, new) for i in e.indices), e.dtype)
        return None

    return transform(body, fn)


def _with_body(op: ComputeOp, body) -> ComputeOp:
    reduce = body.axis if isinstance(body, Reduce) else op.reduce_axis
    return ComputeOp(op.name, op.axis, reduce, body, op.tag, op.attrs)


def _topo_order(roots: list) -> list:
    order: list = []
    seen: set = set()

    def visit(op) -> None:
        if op in seen:
            return
        seen.add(op)
        for t in op.input_tensors:
            visit(t.op)
        order.append(op)

    for op in roots:
        visit(op)
    return order


def create_schedule(outputs: Tensor | Sequence[Tensor]) -> Schedule:
    """Start a schedule in which every stage is computed at the root, in DRAM.

    Parameters
    ----------
    outputs
        The tensor(s) the program produces.

    Returns
    -------
    Schedule

    Raises
    ------
    ScheduleError
        If an output is a placeholder.

    Examples
    --------
    >>> from vta.compiler import te
    >>> A = te.placeholder((4,), "int32", "A")
    >>> B = te.compute((4,), lambda i: A[i] + 1, "B")
    >>> [st.name for st in create_schedule(B).stages]
    ['A', 'B']
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    for t in outs:
        if not isinstance(t, Tensor) or not isinstance(t.op, ComputeOp):
            raise ScheduleError(f"create_schedule: outputs must be computed tensors, got {t!r}")
    return Schedule(outs)
