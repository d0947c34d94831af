"""reference: the numpy oracles agree with direct loops and wrap where the hardware wraps."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import layout, reference
from vta.errors import ScheduleError


def _conv_loops(x, w, stride, pad):
    x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    o, _, kh, kw = w.shape
    oh, ow = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], o, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", win, w.astype(np.int64))
    return out


@pytest.mark.parametrize(("stride", "pad"), [(1, 1), (2, 1), (2, 0)])
def test_conv2d_matches_direct_loops(rng, stride, pad):
    x = rng.integers(-128, 128, (1, 16, 7, 7)).astype(np.int8)
    w = rng.integers(-128, 128, (32, 16, 3, 3)).astype(np.int8)
    got = reference.conv2d(layout.pack_nchw(x), layout.pack_oihw(w), (stride, stride), (pad, pad))
    np.testing.assert_array_equal(layout.unpack_nchw(got), _conv_loops(x, w, stride, pad).astype(np.int32))


def test_requant_shift_relu_clip_then_low_bits():
    acc = np.array([-1000, -1, 0, 1000, 70000], np.int32)
    np.testing.assert_array_equal(reference.requant(acc, 4, relu=True, clip=(0, 127)), [0, 0, 0, 62, 127])
    np.testing.assert_array_equal(reference.requant(np.array([4096], np.int32), 4), [0])  # 256 -> low 8 bits


def test_dense_and_wraparound():
    x = np.full((1, 1, 1, 16), -128, np.int8)
    w = np.full((1, 1, 16, 16), -128, np.int8)
    assert reference.dense(x, w)[0, 0, 0, 0] == 16 * 128 * 128
    assert reference.alu("ADD", np.array([2**31 - 1]), 1)[0] == -(2**31)


def test_alu_shr_negative_amount_shifts_left():
    np.testing.assert_array_equal(reference.alu("SHR", np.array([-16, 3]), np.array([2, -2])), [-4, 12])
    with pytest.raises(ScheduleError, match=r"^alu: unknown opcode 'SUB'"):
        reference.alu("SUB", np.array([1]), 1)


def test_max_pool_pads_with_zero_like_the_dma_unless_told_otherwise():
    x = np.full((1, 1, 2, 2, 1, 16), -5, np.int8)
    out = reference.max_pool2d(x, (3, 3), (1, 1), (1, 1))
    assert out.shape == (1, 1, 2, 2, 1, 16) and (out == 0).all()
    assert (reference.max_pool2d(x, (3, 3), (1, 1), (1, 1), pad_value=None) == -5).all()
