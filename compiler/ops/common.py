"""What every operator shares: the fused requantize epilogue and the scheduled-operator record.

VTA's accumulator is int32 and its STORE keeps the low 8 bits (spec §3.5), so every operator
ends the same way: optional ALU stages in ``local.acc_buffer`` (shift, relu, clip), then the
int8 cast that the store performs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from vta.compiler import reference, te
from vta.compiler.schedule import Schedule, Stage
from vta.compiler.te import IterVar, Tensor
from vta.errors import ScheduleError

__all__ = ["ACC_SCOPE", "Epilogue", "ScheduledOp", "check_thread_split", "divisors", "pair", "require_int32_input",
           "schedule_ewise", "split_knob", "split_vthread", "thread_knob"]

ACC_SCOPE = "local.acc_buffer"
# HLS takes the low 5 bits of a shift amount as a signed number (spec §3.4): 0..15 is portable.
_MAX_SHIFT = 15
_IMM = (-(1 << 15), (1 << 15) - 1)


@dataclass(frozen=True)
class Epilogue:
    """int32 accumulators to int8: ``>> shift``, then ``max(., 0)``, then clip, each one ALU stage.

    Parameters
    ----------
    shift
        Arithmetic right shift (requantize), 0..15 (0: no stage); larger amounts differ between
        the simulator and the Pynq hardware (spec §3.4).
    relu
        Add a ``max(x, 0)`` stage.
    clip
        ``(lo, hi)``: a MIN stage then a MAX stage (VTA has no clip opcode, spec §2.7); both bounds
        must fit the 16-bit ALU immediate.

    Raises
    ------
    ScheduleError
        If a value is out of range.

    Examples
    --------
    >>> Epilogue(shift=8, relu=True, clip=(0, 127)).reference(np.array([70000, -5]))
    array([127,   0], dtype=int8)
    """

    shift: int = 0
    relu: bool = False
    clip: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or not 0 <= self.shift <= _MAX_SHIFT:
            raise ScheduleError(f"Epilogue: shift={self.shift!r}: expected an integer in [0, {_MAX_SHIFT}] "
                                "(larger shifts differ between the simulator and the hardware)")
        if self.clip is not None:
            lo, hi = _two_ints(self.clip, "Epilogue: clip")
            if not _IMM[0] <= lo <= hi <= _IMM[1]:
                raise ScheduleError(f"Epilogue: clip={self.clip!r}: expected lo <= hi, both in "
                                    f"[{_IMM[0]}, {_IMM[1]}] (the 16-bit ALU immediate)")
            object.__setattr__(self, "clip", (lo, hi))

    def apply(self, acc: Tensor) -> tuple[list[Tensor], Tensor]:
        """The ALU stages on ``acc`` and the int8 output tensor that is stored."""
        stages: list[Tensor] = []
        cur = acc

        def add(fn: Callable, name: str) -> None:
            nonlocal cur
            prev = cur
            cur = te.compute(acc.shape, lambda *i: fn(prev[i]), name)
            stages.append(cur)

        if self.shift:
            add(lambda x: x >> self.shift, "shr")
        if self.relu:
            add(lambda x: te.max(x, 0), "relu")
        if self.clip is not None:
            add(lambda x: te.min(x, self.clip[1]), "clip_hi")
            add(lambda x: te.max(x, self.clip[0]), "clip_lo")
        last = cur
        out = te.compute(acc.shape, lambda *i: last[i].astype("int8"), "out")
        return stages, out

    def reference(self, acc: np.ndarray) -> np.ndarray:
        """What the stages and the store make of int32 accumulators."""
        return reference.requant(acc, self.shift, self.relu, self.clip)


def schedule_ewise(s: Schedule, stages: Sequence[Tensor], parent: Stage, axis: IterVar) -> None:
    """Put ALU stages in the accumulator, each one kernel, computed at ``parent``'s ``axis``."""
    for t in stages:
        s[t].set_scope(ACC_SCOPE)
        s[t].pragma(s[t].op.axis[0], "alu")
        s[t].compute_at(parent, axis)


def split_vthread(stage: Stage, axis: IterVar, nthread: int) -> IterVar:
    """Split ``nthread`` virtual threads off ``axis`` (inner part, placed outermost); return the outer part."""
    outer, v_t = stage.split(axis, factor=nthread)
    leaves = stage.leaf_iter_vars
    stage.reorder(v_t, *leaves[:leaves.index(v_t)])
    stage.bind(v_t, te.thread_axis("cthread"))
    return outer


@dataclass(frozen=True)
class ScheduledOp:
    """An operator ready for ``lower``/``build``: its schedule, its arguments and its numpy oracle.

    ``args`` are the inputs then the output, in the order ``lower(schedule, args)`` and
    ``interp.run``/``Program.run`` take arrays; ``reference(*inputs)`` is the expected output.

    Examples
    --------
    >>> from vta.compiler.ops import elementwise
    >>> op = elementwise((1, 2, 1, 16), "add", 3)
    >>> [t.name for t in op.args]
    ['x', 'out']
    """

    name: str
    schedule: Schedule
    args: tuple[Tensor, ...]
    reference: Callable[..., np.ndarray]

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return self.args[:-1]

    @property
    def output(self) -> Tensor:
        return self.args[-1]

    def random_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        """One random array per input: int8 over its whole range, int32 over +-2**20."""
        arrays = []
        for t in self.inputs:
            lo, hi = (-128, 128) if t.dtype == "int8" else (-(1 << 20), 1 << 20)
            arrays.append(rng.integers(lo, hi, t.shape).astype(t.dtype))
        return arrays

    def empty_output(self) -> np.ndarray:
        """A zeroed array for the output, to be filled in place."""
        return np.zeros(self.output.shape, self.output.dtype)


def require_int32_input(t: Tensor, what: str) -> None:
    """Refuse an int8 tensor bound for the accumulator: that is LOAD ACC_8BIT, absent on Pynq (spec §3.11)."""
    if t.dtype != "int32":
        raise ScheduleError(
            f"{what}: input {t.name} is {t.dtype}; the accumulator is loaded from int32 DRAM tensors only "
            "(an int8 source needs LOAD ACC_8BIT, which the Pynq bitstream does not implement)")


def _two_ints(value: object, what: str) -> tuple[int, int]:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok:
        raise ScheduleError(f"{what}={value!r}: expected two integers")
    return int(value[0]), int(value[1])  # type: ignore[index]


def pair(value: int | Sequence[int], what: str, low: int = 1) -> tuple[int, int]:
    """``v`` or ``(v_h, v_w)`` as a pair of integers >= ``low``."""
    scalar = isinstance(value, int) and not isinstance(value, bool)
    h, w = _two_ints((value, value) if scalar else value, what)
    if h < low or w < low:
        raise ScheduleError(f"{what}={value!r}: expected integers >= {low}")
    return h, w


def check_shape_fields(record: object, what: str) -> None:
    """Every field after the name of a workload record is an int, >= 0 for ``pad`` and >= 1 otherwise."""
    for f in fields(record)[1:]:
        v = getattr(record, f.name)
        low = 0 if f.name == "pad" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ScheduleError(f"{what} {record.name}: {f.name}={v!r}: expected an integer >= {low}")


def split_knob(owner: str, knob: str, value: object) -> tuple[int, int]:
    """An ``[outer, inner]`` split knob as two positive integers; ScheduleError naming it otherwise."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value)
    if not ok:
        raise ScheduleError(f"{owner}: {knob}={value!r}: expected [outer, inner], two positive integers")
    return int(value[0]), int(value[1])  # type: ignore[index]


def thread_knob(owner: str, knob: str, value: object) -> None:
    """Refuse a virtual-thread count other than 1 or 2 (the template's choices, spec §7.3)."""
    if isinstance(value, bool) or value not in (1, 2):
        raise ScheduleError(f"{owner}: {knob}={value!r}: expected 1 or 2 virtual threads")


def check_thread_split(where: str, knob: str, threads: int, split_name: str, split: tuple[int, int]) -> None:
    """The outer part of a split that virtual threads divide must be a multiple of their count."""
    if split[0] % threads:
        raise ScheduleError(f"{where}: {knob}={threads}: the outer part of {split_name}={list(split)} ({split[0]}) "
                            "is not a multiple of the thread count")


def divisors(n: int) -> list[int]:
    """Divisors of ``n`` in increasing order (the tile sizes a loop of extent ``n`` can take)."""
    return [f for f in range(1, n + 1) if n % f == 0]
