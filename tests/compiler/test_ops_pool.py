"""ops.pool: max-pool as a chain of in-place MAX kernels over a zero-padded accumulator tile."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.conftest import check_compiled_bit_exact
from vta.compiler import lower, reference, te
from vta.compiler.check import check_schedule
from vta.compiler.interp import run
from vta.compiler.ops import Epilogue, max_pool2d, max_pool2d_packed, schedule_max_pool2d_packed
from vta.errors import ScheduleError


def _run(op, inputs):
    func = lower(op.schedule, op.args, debug=True)
    got = op.empty_output()
    run(func, *inputs, got)
    return got


@pytest.mark.parametrize(("shape", "pool", "stride", "pad", "tile"), [
    ((1, 2, 8, 8, 1, 16), 3, 2, 1, None),
    ((1, 2, 8, 8, 1, 16), 2, 2, 0, None),
    ((1, 1, 9, 7, 1, 16), (3, 2), (1, 2), (1, 0), None),
    ((1, 2, 8, 8, 1, 16), 3, 1, 1, (2, 4)),
    ((2, 1, 6, 6, 1, 16), 1, 2, 0, None),
    ((1, 1, 7, 7, 1, 16), 3, 3, 2, (1, 3)),
])
@pytest.mark.parametrize("epilogue", [None, Epilogue(shift=3, clip=(-128, 127))])
def test_max_pool_is_bit_exact(rng, shape, pool, stride, pad, tile, epilogue):
    op = max_pool2d(shape, pool, stride, pad, epilogue, tile)
    (data,) = op.random_inputs(rng)
    np.testing.assert_array_equal(_run(op, [data]), op.reference(data))


def test_zero_padding_equals_true_max_pool_for_non_negative_inputs(rng):
    op = max_pool2d((1, 2, 8, 8, 1, 16), 3, 2, 1)
    data = rng.integers(0, 1 << 20, op.inputs[0].shape).astype(np.int32)
    true_max = reference.max_pool2d(data, (3, 3), (2, 2), (1, 1), pad_value=None)
    np.testing.assert_array_equal(_run(op, [data]), reference.wrap(true_max, "int8"))


def test_negative_inputs_see_the_zero_padding():
    op = max_pool2d((1, 1, 4, 4, 1, 16), 3, 1, 1)
    got = _run(op, [np.full((1, 1, 4, 4, 1, 16), -5, np.int32)])
    want = np.zeros((4, 4), np.int8)
    want[1:3, 1:3] = -5  # only windows away from the border miss the padding
    np.testing.assert_array_equal(got[0, 0, :, :, 0, 0], want)
    np.testing.assert_array_equal(got, op.reference(np.full((1, 1, 4, 4, 1, 16), -5, np.int32)))


def test_default_tile_is_the_fewest_that_fit():
    op = max_pool2d((1, 1, 8, 8, 1, 16), 1, 2, 0)
    bounds = check_schedule(op.schedule, strict=True)
    assert {st.name: bounds[st].shape[2:4] for st in op.schedule.stages[1:]} == {
        "data.local.acc_buffer": (7, 7), "max_0_0": (4, 4), "out": (4, 4)}


def test_window_is_a_copy_then_in_place_max_kernels():
    t = max_pool2d_packed(te.placeholder((1, 1, 8, 8, 1, 16), "int32", "x"), 2, 2, 0)
    assert [w.name for w in t.window] == ["max_0_0", "max_0_1", "max_1_0", "max_1_1"]
    assert str(t.window[0].op.body) == "x[b, c, (i * 2), (j * 2), bi, ci]"
    assert str(t.window[3].op.body) == ("max(max_1_0[i0, i1, i2, i3, i4, i5], "
                                        "x[i0, i1, ((i2 * 2) + 1), ((i3 * 2) + 1), i4, i5])")
    s = schedule_max_pool2d_packed(t)
    scopes = {st.name: (st.scope, sorted(st.pragmas.values())) for st in s.stages}
    assert scopes["x.local.acc_buffer"] == ("local.acc_buffer", ["dma_copy"])
    assert all(scopes[w.name] == ("local.acc_buffer", ["alu"]) for w in t.window)


def test_resnet18_max_pool_tiles_to_fit_the_accumulator():
    op = max_pool2d((1, 4, 112, 112, 1, 16), 3, 2, 1, Epilogue(clip=(0, 127)))
    bounds = check_schedule(op.schedule, strict=True)
    shapes = {st.name: bounds[st].shape[:4] for st in op.schedule.stages if st.name in ("data_pad", "max_2_2")}
    # 8 tiles of 14x28 outputs (29x57 inputs each) is the fewest that fit; 4x56 would take 14.
    assert shapes == {"data_pad": (1, 1, 29, 57), "max_2_2": (1, 1, 14, 28)}
    assert 29 * 57 + 14 * 28 <= 2048
    lower(op.schedule, op.args)


@pytest.mark.slow
def test_resnet18_max_pool_compiles_bit_exact(rng):
    """ResNet-18's 3x3 stride-2 max-pool over 64 x 112 x 112 (eight accumulator tiles) on the simulator."""
    op = max_pool2d((1, 4, 112, 112, 1, 16), 3, 2, 1, Epilogue(clip=(0, 127)))
    data = rng.integers(0, 1 << 12, op.inputs[0].shape).astype(np.int32)
    check_compiled_bit_exact(op, rng, [data])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: max_pool2d((1, 2, 8, 8, 1, 16), 3, 2, 1, tile=(3, 4)),
     r"^max_pool2d: tile=\[3, 4\]: 3 does not divide the output height 4$"),
    (lambda: max_pool2d((1, 2, 112, 112, 1, 16), 3, 2, 1, tile=(8, 56)),
     r"^max_pool2d: tile=\[8, 56\] needs 1921 input \+ 448 output accumulator entries, it holds 2048 "
     r"\(ACC_BUFF_DEPTH\)$"),
    (lambda: max_pool2d_packed(te.placeholder((1, 1, 4, 4, 1, 16), "int8", "q"), 2),
     r"^max_pool2d: input q is int8; the accumulator is loaded from int32 DRAM tensors only"),
    (lambda: max_pool2d_packed(te.placeholder((4, 4, 1, 16), "int32", "v"), 2),
     r"^max_pool2d: v must be 6-d NCHW1n16c, got shape \(4, 4, 1, 16\)$"),
    (lambda: max_pool2d((1, 1, 4, 4, 1, 16), 7, 1, 1), r"^max_pool2d: a 7x7 window does not fit the 6x6 padded input$"),
    (lambda: max_pool2d((1, 1, 4, 4, 1, 16), 2, 0), r"^max_pool2d: strides=0: expected integers >= 1$"),
    (lambda: max_pool2d((1, 1, 4, 4, 1, 16), 2, 1, (1, -1)), r"^max_pool2d: padding=\(1, -1\): expected integers >= 0"),
    (lambda: max_pool2d((1, 1, 4, 4, 1, 16), (2, 2, 2)), r"^max_pool2d: pool_size=\(2, 2, 2\): expected two integers$"),
])
def test_errors(call, message):
    with pytest.raises(ScheduleError, match=message):
        call()
