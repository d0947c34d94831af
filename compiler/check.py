"""Whole-schedule checks: SRAM capacity, ALU micro-op kernels and hardware coverage.

Run after every primitive on the parts already placed (``strict=False``) and in full before
lowering (``strict=True``), so an impossible schedule fails at compile time with the reason.
"""

from __future__ import annotations

from vta.compiler.arith import affine, row_major, simplify, strip_cast, substitute
from vta.compiler.bound import StageBounds, infer_bounds, vthread_copies
from vta.compiler.expr import BinOp, Cmp, ComputeOp, Const, Expr, IterVar, Select, TensorLoad
from vta.compiler.schedule import Schedule, Stage
from vta.compiler.stage import SRAM_DEPTH
from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["ALU_OPS", "alu_loops", "check_pragma_body", "check_schedule", "sram_usage"]

# TE operator -> ALU opcode name (spec §2.7); a plain copy or cast is SHR by 0 (spec §7.4).
ALU_OPS = {"+": "ADD", "*": "MUL", "min": "MIN", "max": "MAX", ">>": "SHR", "<<": "SHR"}
_MUL_TARGETS = ("sim", "intelfocl", "tsim")


def _is_copy_index(idx: Expr, axis: IterVar) -> bool:
    form = affine(simplify(idx))
    return form is not None and set(form) - {None} == {axis} and form[axis] == 1


def check_pragma_body(stage: Stage, pragma: str, what: str) -> None:
    """Refuse a pragma whose stage body is not a (padded/cast) copy or a single ALU operation."""
    op = stage.op
    body = op.body
    if pragma == "dma_copy":
        src = body.true_value if isinstance(body, Select) else body
        src = strip_cast(src)
        ok = isinstance(src, TensorLoad) and len(src.indices) == len(op.axis) and all(
            _is_copy_index(i, v) for i, v in zip(src.indices, op.axis))
        if not ok or (isinstance(body, Select) and op.tag != "pad"):
            raise ScheduleError(f"stage {op.name}: {what}: a DMA copy needs a plain copy, cast or pad body, "
                                f"got {body}")
        return
    alu_operands(stage, what)


def alu_operands(stage: Stage, what: str) -> tuple[str, TensorLoad, TensorLoad | Const | None]:
    """(opcode, in-place operand, other operand or None) of an ALU stage; raise if it is not one."""
    op = stage.op
    body = op.body

    def fail(msg: str) -> ScheduleError:
        return ScheduleError(f"stage {op.name}: {what}: {msg}")

    if op.dtype != "int32":
        raise fail(f"the ALU works on int32 accumulator entries, this stage is {op.dtype}")
    if isinstance(strip_cast(body), TensorLoad):
        return "SHR", strip_cast(body), Const(0)  # type: ignore[return-value]
    if not isinstance(body, BinOp):
        raise fail(f"{body} is not one ALU operation")
    if body.op == "-":
        raise fail(f"{body}: VTA's ALU has no SUB opcode (its operations are MIN, MAX, ADD, SHR, MUL)")
    if body.op not in ALU_OPS:
        raise fail(f"{body}: operator {body.op} has no ALU opcode; allowed: {', '.join(ALU_OPS)}")
    if body.op == "*" and get_env().TARGET not in _MUL_TARGETS:
        raise fail(f"{body}: ALU MUL exists only on targets {', '.join(_MUL_TARGETS)}, not {get_env().TARGET}")
    a, b = strip_cast(body.a), strip_cast(body.b)
    for x in (a, b):
        if not isinstance(x, (TensorLoad, Const)):
            raise fail(f"{body}: operand {x} must be a tensor element or a constant; use one stage per ALU op")
        if isinstance(x, Const) and not -(1 << 15) <= x.value < (1 << 15):
            raise fail(f"{body}: immediate {x.value} does not fit the 16-bit signed ALU immediate")
    in_place = [x for x in (a, b) if isinstance(x, TensorLoad)
                and all(_is_copy_index(i, v) and simplify(i) == v for i, v in zip(x.indices, op.axis))]
    if not in_place:
        raise fail(f"{body}: one operand must be read at the stage's own index (ALU ops are in place)")
    other = b if in_place[0] is a else a
    if isinstance(other, Cmp):
        raise fail(f"{body}: comparisons are not ALU operations")
    return ALU_OPS[body.op], in_place[0], other


def alu_loops(stage: Stage, bounds: dict[Stage, StageBounds], pragma_axis: IterVar) -> list[tuple[int, int, int]]:
    """Micro-op loops (extent, dst step, src step) of an ALU kernel after merging contiguous loops.

    The two innermost loops are the vector lanes of one ACC entry (spec §7.4 ALU extraction).
    """
    b = bounds[stage]
    leaves = stage.leaf_iter_vars[stage.leaf_iter_vars.index(pragma_axis):]
    where = f"stage {stage.name}: pragma({pragma_axis.name}, 'alu')"
    op = stage.op
    if len(leaves) < 2 or tuple(leaves[-2:]) != tuple(op.axis[-2:]):
        raise ScheduleError(f"{where}: the ALU works on whole ACC entries; the two innermost loops must be the "
                            f"unsplit element axes {op.axis[-2].name}, {op.axis[-1].name}")
    _, _, other = alu_operands(stage, where)
    dst_step = _entry_steps(op.axis, b.region, b.root_value, leaves[:-2])
    src_step = dst_step
    if isinstance(other, TensorLoad) and other.tensor.op in stage.schedule.stage_map:
        src = stage.schedule.stage_map[other.tensor.op]
        if src in bounds:
            idx = [simplify(substitute(i, b.root_value)) for i in other.indices]
            src_step = _steps_of(idx, bounds[src].shape, leaves[:-2])
    loops: list[tuple[int, int, int]] = []
    for v, d, s in zip(leaves[:-2], dst_step, src_step):
        n = b.leaf_extent[v]
        if n == 1:
            continue
        if loops and loops[-1][1] == d * n and loops[-1][2] == s * n:
            outer_n = loops.pop()[0]
            loops.append((outer_n * n, d, s))
        else:
            loops.append((n, d, s))
    return loops


def _entry_steps(axes, region, root_value, loops: list[IterVar]) -> list[int]:
    return _steps_of([root_value[v] for v in axes], tuple(e for _, e in region), loops)


def _steps_of(indices: list[Expr], shape: tuple[int, ...], loops: list[IterVar]) -> list[int]:
    """SRAM-entry step of each loop for a row-major tile whose last two dims form one entry."""
    strides = [*row_major(shape[:-2]), 0, 0]
    steps = []
    for v in loops:
        total = 0
        for i, st in zip(indices, strides):
            form = affine(simplify(i)) or {}
            total += form.get(v, 0) * st
        steps.append(total)
    return steps


def sram_usage(schedule: Schedule, bounds: dict[Stage, StageBounds], strict: bool) -> dict[str, list]:
    """SRAM entries per scope: [(stage, entries)] counting in-place ALU stages once."""
    usage: dict[str, list] = {scope: [] for scope in SRAM_DEPTH}
    for stage in schedule.stages:
        if stage.scope not in SRAM_DEPTH or (stage.attach is None and not strict) or stage not in bounds:
            continue
        if _aliases_input(stage):
            continue
        entries = 1
        for n in bounds[stage].shape[:-2]:
            entries *= n
        usage[stage.scope].append((stage, entries * vthread_copies(stage)))
    return usage


def _aliases_input(stage: Stage) -> bool:
    """An ALU stage writes in place over its operand's buffer when it is that buffer's only reader."""
    if "alu" not in stage.pragmas.values():
        return False
    _, src, other = alu_operands(stage, "alu")
    if not all(simplify(i) == v for i, v in zip(src.indices, stage.op.axis)):
        return False  # a copy from shifted or strided entries needs its own tile
    if isinstance(other, TensorLoad) and other.tensor is src.tensor and other.indices != src.indices:
        return False  # reading the operand at other entries too: overwriting it in place would change them
    producer = stage.schedule.stage_map.get(src.tensor.op)
    if producer is None or producer.scope != stage.scope or producer.attach != stage.attach:
        return False
    readers = [s for s in stage.schedule.stages if not s.is_placeholder and src.tensor in s.op.input_tensors]
    return readers == [stage]


def check_schedule(schedule: Schedule, strict: bool) -> dict[Stage, StageBounds]:
    """Bounds, SRAM capacity and ALU kernels; with ``strict`` also root SRAM stages and coverage."""
    bounds = infer_bounds(schedule, strict)
    env = get_env()
    for scope, items in sram_usage(schedule, bounds, strict).items():
        depth = getattr(env, SRAM_DEPTH[scope])
        total = sum(n for _, n in items)
        if total > depth:
            parts = ", ".join(f"{s.name}: {n}" for s, n in items)
            raise ScheduleError(f"{scope} needs {total} entries ({parts}) but holds {depth} "
                                f"({SRAM_DEPTH[scope]}); use smaller tiles or fewer virtual threads")
    for stage in schedule.stages:
        for axis, pragma in stage.pragmas.items():
            if pragma == "alu" and stage in bounds and (strict or stage.attach is not None):
                loops = alu_loops(stage, bounds, axis)
                if len(loops) > 2:
                    raise ScheduleError(
                        f"stage {stage.name}: pragma({axis.name}, 'alu'): the micro-op kernel needs {len(loops)} "
                        f"loops (extent, dst step, src step) {loops}; the hardware has at most 2 — make the tile "
                        "contiguous or move the pragma inward")
        if strict:
            _check_coverage(stage)
    return bounds


def _check_coverage(stage: Stage) -> None:
    """Each on-chip stage must be filled by VTA itself: a DMA copy, an ALU kernel or the GEMM."""
    if isinstance(stage.op, ComputeOp) and "alu" in stage.pragmas.values() and stage.scope != "local.acc_buffer":
        raise ScheduleError(f"stage {stage.name}: the ALU writes local.acc_buffer, this stage is in {stage.scope}")
    if stage.scope != "global" and not stage.pragmas and stage.tensorized is None:
        raise ScheduleError(f"stage {stage.name} in {stage.scope} has no dma_copy/alu pragma and is not "
                            "tensorized; nothing on VTA computes it")
