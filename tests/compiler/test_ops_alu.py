"""ops.alu: element-wise int32 ops on the ALU, tiled to fit the accumulator, stored as int8."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.conftest import check_bit_exact, check_compiled_bit_exact
from vta.compiler import te
from vta.compiler.check import check_schedule
from vta.compiler.ops import ALU_OPS, Epilogue, alu_packed, elementwise, schedule_alu_packed
from vta.errors import ScheduleError


@pytest.mark.parametrize(("op", "imm"), [("add", None), ("min", None), ("max", None), ("add", -300), ("min", 50),
                                         ("max", -50), ("shr", 0), ("shr", 3), ("shr", 15)])
@pytest.mark.parametrize("epilogue", [None, Epilogue(shift=2, relu=True, clip=(-64, 63))])
def test_ops_are_bit_exact(rng, op, imm, epilogue):
    check_bit_exact(elementwise((1, 2, 3, 5, 1, 16), op, imm, epilogue), rng)


def test_add_wraps_like_the_alu(rng):
    op = elementwise((2, 3, 1, 16), "add")
    a = np.full((2, 3, 1, 16), 2**31 - 1, np.int32)
    b = np.ones((2, 3, 1, 16), np.int32)
    check_bit_exact(op, rng, [a, b])


@pytest.mark.parametrize(("shape", "imm", "max_entries", "tile"), [
    ((1, 4, 8, 8, 1, 16), None, 48, (1, 1, 4, 8)),       # 64 entries a channel block: split the rows
    ((1, 4, 8, 8, 1, 16), 1, 128, (1, 2, 8, 8)),         # two whole channel blocks per tile
    ((2, 3, 4099, 1, 16), 5, None, (1, 1, 1)),           # a prime row longer than the accumulator: splits divide
    ((2, 3, 2039, 1, 16), 5, None, (1, 1, 2039)),        # a prime row that fits
    ((1, 8, 56, 56, 1, 16), None, None, (1, 1, 14, 56)),  # at most 1024 entries each for x and y
    ((1, 8, 56, 56, 1, 16), 7, None, (1, 1, 28, 56)),     # 2048 entries for one input
])
def test_tiles_are_contiguous_and_fit_the_accumulator(rng, shape, imm, max_entries, tile):
    op = elementwise(shape, "add" if imm is None else "max", imm, Epilogue(clip=(-100, 100)), max_entries)
    bounds = check_schedule(op.schedule, strict=True)
    caches = [st for st in op.schedule.stages if st.name.endswith(".local.acc_buffer")]
    assert [bounds[st].shape[:-2] for st in caches] == [tile] * len(op.inputs)
    if np.prod(shape) <= 2**13:
        check_bit_exact(op, rng)


@pytest.mark.slow
def test_resnet18_residual_add_compiles_bit_exact(rng):
    """ResNet-18's first residual add (64 channels, 56x56), tiled to fit the accumulator, on the simulator."""
    check_compiled_bit_exact(elementwise((1, 4, 56, 56, 1, 16), "add", None, Epilogue(shift=1, relu=True)), rng)


def test_stages_are_in_place_alu_kernels_in_the_accumulator():
    op = elementwise((1, 2, 4, 4, 1, 16), "add", None, Epilogue(shift=1, clip=(0, 127)))
    stages = {st.name: (st.scope, sorted(st.pragmas.values())) for st in op.schedule.stages}
    assert stages == {
        "x": ("global", []), "x.local.acc_buffer": ("local.acc_buffer", ["dma_copy"]),
        "y": ("global", []), "y.local.acc_buffer": ("local.acc_buffer", ["dma_copy"]),
        "add": ("local.acc_buffer", ["alu"]), "shr": ("local.acc_buffer", ["alu"]),
        "clip_hi": ("local.acc_buffer", ["alu"]), "clip_lo": ("local.acc_buffer", ["alu"]),
        "out": ("global", ["dma_copy"]),
    }
    assert set(ALU_OPS) == {"add", "min", "max", "shr"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, y: alu_packed(x, "sub", y), r"^alu: unknown op 'sub'; allowed: add, min, max, shr$"),
    (lambda x, y: alu_packed(x, "shr", y), r"^shr: shift by a tensor is not portable"),
    (lambda x, y: alu_packed(x, "shr", 16),
     r"^shr: immediate 16 is outside \[0, 15\] \(shift amounts every implementation agrees on"),
    (lambda x, y: alu_packed(x, "add", 40000), r"^add: immediate 40000 is outside \[-32768, 32767\] \(16-bit ALU "),
    (lambda x, y: alu_packed(x, "add", 1.5), r"^add: operand 1.5 must be a tensor or an integer immediate$"),
    (lambda x, y: alu_packed(x, "add", te.placeholder((1, 3, 1, 16), "int32", "z")),
     r"^add: operand shapes differ \(\(1, 2, 1, 16\) vs \(1, 3, 1, 16\)\)$"),
    (lambda x, y: alu_packed(te.placeholder((1, 2, 1, 16), "int8", "q"), "add", 1),
     r"^add: input q is int8; the accumulator is loaded from int32 DRAM tensors only \(an int8 source needs "
     r"LOAD ACC_8BIT, which the Pynq bitstream does not implement\)$"),
    (lambda x, y: alu_packed(x, "min", te.placeholder((1, 2, 1, 16), "int8", "q")), r"^min: input q is int8"),
    (lambda x, y: alu_packed(te.placeholder((2, 16), "int32", "v"), "add", 1),
     r"^add: v must have rank >= 3 and innermost dims \(1, 16\) \(one accumulator entry\), got shape \(2, 16\)$"),
    (lambda x, y: schedule_alu_packed(alu_packed(x, "add", y), max_entries=1025),
     r"^add: max_entries=1025: expected 1..1024 \(2 input tile\(s\) share 2048 entries\)$"),
    (lambda x, y: schedule_alu_packed(alu_packed(x, "add", 1), max_entries=0), r"^add: max_entries=0: expected "),
])
def test_errors(call, message):
    x = te.placeholder((1, 2, 1, 16), "int32", "x")
    y = te.placeholder((1, 2, 1, 16), "int32", "y")
    with pytest.raises(ScheduleError, match=message):
        call(x, y)
