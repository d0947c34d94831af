"""Pass 1: turn a checked schedule into a loop nest over buffers.

Each stage becomes the loops of its current leaf axes; stages computed at an axis are
placed (with their tile buffer) inside that loop, before the rest of the body; a reduction
gets its zero-initialisation just outside its first reduction loop; tensorized loops become
one ``Gemm`` statement on whole SRAM entries.
"""

from __future__ import annotations

from vta.compiler.arith import simplify, substitute, transform
from vta.compiler.bound import StageBounds
from vta.compiler.expr import ComputeOp, Const, Expr, IterVar, Reduce, Tensor, TensorLoad
from vta.compiler.lower.ir import Allocate, Buffer, BufferLoad, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store
from vta.compiler.schedule import Schedule, Stage

__all__ = ["make_loop_nest"]


class _Builder:
    def __init__(self, schedule: Schedule, bounds: dict[Stage, StageBounds]) -> None:
        self.schedule = schedule
        self.bounds = bounds
        self.buffers: dict[Stage, Buffer] = {}
        for st in schedule.stages:
            shape = st.op.shape if st.attach is None else bounds[st].shape
            self.buffers[st] = Buffer(st.name, tuple(shape), st.op.dtype, st.scope)

    def _stage_of(self, tensor: Tensor) -> Stage:
        return self.schedule.stage_map[tensor.op]

    def _offset(self, stage: Stage) -> list[Expr]:
        if stage.attach is None or stage.is_placeholder:
            return [Const(0)] * len(stage.op.shape)
        return [mn for mn, _ in self.bounds[stage].region]

    def to_ir(self, expr: Expr, absolute: dict[IterVar, Expr]) -> Expr:
        """TE expression of a stage's body -> IR expression on buffers, in the stage's loop variables."""

        def fn(e: Expr) -> Expr | None:
            if isinstance(e, TensorLoad):
                return self.load(e, absolute)
            return absolute.get(e) if isinstance(e, IterVar) else None

        return simplify(transform(expr, fn))

    def load(self, e: TensorLoad, absolute: dict[IterVar, Expr]) -> BufferLoad:
        src = self._stage_of(e.tensor)
        idx = [simplify(substitute(i, absolute) - off) for i, off in zip(e.indices, self._offset(src))]
        return BufferLoad(self.buffers[src], tuple(idx), e.dtype)

    def stage_nest(self, stage: Stage) -> Stmt:
        op = stage.op
        assert isinstance(op, ComputeOp)
        b = self.bounds[stage]
        absolute = {v: simplify(mn + b.root_value[v]) for v, (mn, _) in zip(op.axis, b.region)}
        absolute.update({v: b.root_value[v] for v in op.reduce_axis})
        buf = self.buffers[stage]
        target = tuple(b.root_value[v] for v in op.axis)
        leaves = list(stage.leaf_iter_vars)
        init: Stmt | None = None
        first_reduce = next((p for p, v in enumerate(leaves) if v.kind == "reduce"), None)
        if stage.tensorized is not None:
            body, init_body, cut = self._gemm(stage, absolute, target)
            leaves = leaves[:cut]
        elif isinstance(op.body, Reduce):
            acc = BufferLoad(buf, target, op.dtype)
            body = Store(buf, target, simplify(acc + self.to_ir(op.body.source, absolute)))
            init_body, cut = Store(buf, target, Const(0, op.dtype)), len(leaves)
        else:
            body, init_body, cut = Store(buf, target, self.to_ir(op.body, absolute)), None, len(leaves)
        if first_reduce is not None and init_body is not None:
            init = init_body
            for v in reversed([v for v in stage.leaf_iter_vars[first_reduce + 1:cut] if v.kind == "data"]):
                init = For(v, b.leaf_extent[v], init)
        return self._wrap_loops(stage, leaves, body, init, first_reduce)

    def _wrap_loops(self, stage: Stage, leaves: list[IterVar], body: Stmt, init: Stmt | None,
                    first_reduce: int | None) -> Stmt:
        extent = self.bounds[stage].leaf_extent
        if first_reduce is not None and first_reduce >= len(leaves) and init is not None:
            body = Seq((init, body))
        body = self._with_children(stage, len(leaves) - 1, body) if leaves else body
        for pos in range(len(leaves) - 1, -1, -1):
            v = leaves[pos]
            loop: Stmt = For(v, extent[v], body, "vthread" if v in stage.binds else "serial")
            if v in stage.pragmas:
                loop = Pragma(stage.pragmas[v], loop)
            if pos == first_reduce and init is not None:
                loop = Seq((init, loop))
            body = self._with_children(stage, pos - 1, loop) if pos else loop
        return body

    def _with_children(self, stage: Stage, pos: int, rest: Stmt) -> Stmt:
        """Place stages attached at ``stage.leaf_iter_vars[pos]`` before ``rest``, inside their buffers."""
        axis = stage.leaf_iter_vars[pos]
        children = [s for s in self.schedule.stages if s.attach == (stage, axis)]
        if not children:
            return rest
        out: Stmt = Seq(tuple(self.stage_nest(c) for c in children) + (rest,))
        for c in reversed(children):
            out = Allocate(self.buffers[c], out)
        return out

    def _gemm(self, stage: Stage, absolute: dict[IterVar, Expr],
              target: tuple[Expr, ...]) -> tuple[Stmt, Stmt, int]:
        axis, intrin = stage.tensorized  # type: ignore[misc]
        m = intrin.match(stage, axis, "tensorize")
        zero = {m.batch: Const(0), m.out_channel: Const(0), m.in_channel: Const(0)}
        inp = self.load(m.inp, {**absolute, **zero})
        wgt = self.load(m.wgt, {**absolute, **zero})
        acc = BufferLoad(self.buffers[stage], tuple(simplify(substitute(i, zero)) for i in target), "int32")
        cut = stage.leaf_iter_vars.index(axis)
        return Gemm(acc, inp, wgt), Gemm(acc, None, None, reset=True), cut


def make_loop_nest(schedule: Schedule, bounds: dict[Stage, StageBounds], args: list[Tensor],
                   name: str) -> LoweredFunc:
    """Loop nest of every root stage in order; intermediate root stages get a top-level buffer."""
    builder = _Builder(schedule, bounds)
    params = tuple(builder.buffers[schedule[t]] for t in args)
    nests = [builder.stage_nest(s) for s in schedule.stages if s.attach is None and not s.is_placeholder]
    body: Stmt = Seq(tuple(nests))
    for st in reversed(schedule.stages):
        if st.attach is None and builder.buffers[st] not in params:
            body = Allocate(builder.buffers[st], body)
    return LoweredFunc(name, params, body)
