"""Element-wise int32 operators on the ALU: tensor + tensor, or add/min/max/shift by an immediate.

Inputs are int32 DRAM tensors whose innermost dims are one accumulator entry (BATCH,
BLOCK_OUT), e.g. packed NCHW1n16c conv outputs kept in int32 (a residual add). Each tile is
loaded into ``local.acc_buffer`` (LOAD ACC), computed in place by one ALU kernel per stage,
then stored as int8. int8 inputs are refused: they would need LOAD ACC_8BIT, which the Pynq
bitstream lacks (spec §3.11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vta.compiler import reference, te
from vta.compiler.ops.common import ACC_SCOPE, Epilogue, ScheduledOp, divisors, require_int32_input, schedule_ewise
from vta.compiler.schedule import Schedule, create_schedule
from vta.compiler.te import Tensor
from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["ALU_OPS", "AluTensors", "alu_packed", "elementwise", "schedule_alu_packed"]

# operator name -> (TE builder, reference opcode)
ALU_OPS = {
    "add": (lambda x, y: x + y, "ADD"),
    "min": (te.min, "MIN"),
    "max": (te.max, "MAX"),
    "shr": (lambda x, y: x >> y, "SHR"),
}
_IMM = (-(1 << 15), (1 << 15) - 1)
_MAX_SHIFT = 15


@dataclass(frozen=True)
class AluTensors:
    """Inputs, the operator stage, the epilogue stages and the int8 output of one element-wise op."""

    inputs: tuple[Tensor, ...]
    result: Tensor
    ewise: tuple[Tensor, ...]
    out: Tensor

    @property
    def args(self) -> tuple[Tensor, ...]:
        return (*self.inputs, self.out)


def _check_operand(op: str, operand: Tensor | int, a: Tensor) -> None:
    if isinstance(operand, Tensor):
        require_int32_input(operand, op)
        if operand.shape != a.shape:
            raise ScheduleError(f"{op}: operand shapes differ ({a.shape} vs {operand.shape})")
        if op == "shr":
            raise ScheduleError("shr: shift by a tensor is not portable (the simulator, HLS and Chisel read the "
                                "amount differently); shift by an immediate")
        return
    if isinstance(operand, bool) or not isinstance(operand, int):
        raise ScheduleError(f"{op}: operand {operand!r} must be a tensor or an integer immediate")
    lo, hi = (0, _MAX_SHIFT) if op == "shr" else _IMM
    if not lo <= operand <= hi:
        raise ScheduleError(f"{op}: immediate {operand} is outside [{lo}, {hi}]"
                            + (" (shift amounts every implementation agrees on)" if op == "shr"
                               else " (16-bit ALU immediate)"))


def alu_packed(a: Tensor, op: str, operand: Tensor | int, epilogue: Epilogue | None = None) -> AluTensors:
    """``out = epilogue(op(a, operand))`` element-wise, with ``op`` one of :data:`ALU_OPS`.

    Parameters
    ----------
    a
        int32 tensor of rank >= 3 whose two innermost dims are (BATCH, BLOCK_OUT).
    op
        "add", "min", "max" (tensor or immediate operand) or "shr" (immediate 0..15).
    operand
        A tensor like ``a`` or an integer immediate (16-bit signed).
    epilogue
        Shift / relu / clip stages before the int8 store.

    Returns
    -------
    AluTensors

    Raises
    ------
    ScheduleError
        If the op is unknown, an input is not int32 with an accumulator-entry layout, the shapes
        differ, or the immediate does not fit.

    Examples
    --------
    >>> x = te.placeholder((1, 2, 4, 4, 1, 16), "int32", "x")
    >>> y = te.placeholder((1, 2, 4, 4, 1, 16), "int32", "y")
    >>> str(alu_packed(x, "add", y).result.op.body)
    '(x[i0, i1, i2, i3, i4, i5] + y[i0, i1, i2, i3, i4, i5])'
    """
    if op not in ALU_OPS:
        raise ScheduleError(f"alu: unknown op {op!r}; allowed: {', '.join(ALU_OPS)}")
    require_int32_input(a, op)
    env = get_env()
    entry = (env.BATCH, env.BLOCK_OUT)
    if a.ndim < 3 or a.shape[-2:] != entry:
        raise ScheduleError(f"{op}: {a.name} must have rank >= 3 and innermost dims {entry} (one accumulator "
                            f"entry), got shape {a.shape}")
    _check_operand(op, operand, a)
    fn = ALU_OPS[op][0]
    if isinstance(operand, Tensor):
        b = operand
        result = te.compute(a.shape, lambda *i: fn(a[i], b[i]), op)
        inputs: tuple[Tensor, ...] = (a, b)
    else:
        result = te.compute(a.shape, lambda *i: fn(a[i], operand), op)
        inputs = (a,)
    ewise, out = (epilogue or Epilogue()).apply(result)
    return AluTensors(inputs, result, tuple(ewise), out)


def _tile(dims: Sequence[int], budget: int) -> tuple[int, int]:
    """(axis, inner size): the largest tile of whole inner dims that is contiguous and fits ``budget``."""
    inner = 1
    for axis in reversed(range(len(dims))):
        if inner * dims[axis] > budget:
            return axis, max(f for f in divisors(dims[axis]) if f * inner <= budget)
        inner *= dims[axis]
    return 0, dims[0]


def schedule_alu_packed(tensors: AluTensors, max_entries: int | None = None) -> Schedule:
    """Contiguous tiles that fit the accumulator, loaded, computed in place and stored.

    The tile is the largest block of whole inner dimensions (one contiguous DRAM range, one
    ALU loop) with at most ``max_entries`` accumulator entries per input; by default the
    accumulator depth shared by the input tiles (two for a tensor operand).

    Raises
    ------
    ScheduleError
        If ``max_entries`` is not positive or exceeds the accumulator share.

    Examples
    --------
    >>> x = te.placeholder((1, 8, 56, 56, 1, 16), "int32", "x")
    >>> s = schedule_alu_packed(alu_packed(x, "shr", 3))
    """
    env = get_env()
    budget = env.ACC_BUFF_DEPTH // len(tensors.inputs)
    if max_entries is not None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or not 0 < max_entries <= budget:
            raise ScheduleError(f"{tensors.result.name}: max_entries={max_entries!r}: expected 1..{budget} "
                                f"({len(tensors.inputs)} input tile(s) share {env.ACC_BUFF_DEPTH} entries)")
        budget = max_entries
    out = tensors.out
    s = create_schedule(out)
    caches = [s.cache_read(t, ACC_SCOPE, [tensors.result]) for t in tensors.inputs]
    axes = s[out].op.axis
    axis, factor = _tile(out.shape[:-2], budget)
    outer, inner = s[out].split(axes[axis], factor=factor)
    for c in caches:
        s[c].compute_at(s[out], outer)
        s[c].pragma(s[c].op.axis[0], "dma_copy")
    schedule_ewise(s, (tensors.result, *tensors.ewise), s[out], outer)
    s[out].pragma(inner, "dma_copy")
    return s


def elementwise(shape: Sequence[int], op: str, imm: int | None = None, epilogue: Epilogue | None = None,
                max_entries: int | None = None) -> ScheduledOp:
    """A scheduled element-wise op on int32 tensors of ``shape``: ``x op y``, or ``x op imm`` if given.

    Examples
    --------
    >>> op = elementwise((1, 4, 8, 8, 1, 16), "add", epilogue=Epilogue(shift=1, clip=(-128, 127)))
    >>> [t.name for t in op.args]
    ['x', 'y', 'out']
    """
    x = te.placeholder(tuple(shape), "int32", "x")
    operand: Tensor | int = te.placeholder(tuple(shape), "int32", "y") if imm is None else imm
    ep = epilogue or Epilogue()
    tensors = alu_packed(x, op, operand, ep)
    s = schedule_alu_packed(tensors, max_entries)
    opcode = ALU_OPS[op][1]
    if imm is None:
        return ScheduledOp(op, s, tensors.args, lambda a, b: ep.reference(reference.alu(opcode, a, b)))
    return ScheduledOp(f"{op}_imm", s, tensors.args, lambda a: ep.reference(reference.alu(opcode, a, imm)))
