"""layout: packing is the §7.1 transform and unpacking inverts it."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import layout
from vta.errors import ScheduleError


def test_nchw_round_trip_and_block_placement(rng):
    x = rng.integers(-128, 128, (2, 32, 3, 5)).astype(np.int8)
    p = layout.pack_nchw(x, 1, 16)
    assert p.shape == (2, 2, 3, 5, 1, 16)
    assert p[1, 1, 2, 4, 0, 7] == x[1, 16 + 7, 2, 4]
    np.testing.assert_array_equal(layout.unpack_nchw(p), x)


def test_oihw_blocks_are_output_channel_major(rng):
    w = rng.integers(-128, 128, (32, 16, 3, 3)).astype(np.int8)
    p = layout.pack_oihw(w)
    assert p.shape == (2, 1, 3, 3, 16, 16)
    assert p[1, 0, 2, 1, 5, 9] == w[16 + 5, 9, 2, 1]
    np.testing.assert_array_equal(layout.unpack_oihw(p), w)


def test_dense_round_trip(rng):
    w = rng.integers(-128, 128, (32, 48)).astype(np.int8)
    p = layout.pack_dense(w, 16, 16)
    assert p.shape == (2, 3, 16, 16) and p[1, 2, 3, 4] == w[19, 36]
    np.testing.assert_array_equal(layout.unpack_dense(p), w)


def test_channels_must_be_multiples_of_the_block():
    msg = r"^pack_nchw: dimension 1 of shape \(1, 3, 4, 4\) is 3, not a multiple of 16"
    with pytest.raises(ScheduleError, match=msg):
        layout.pack_nchw(np.zeros((1, 3, 4, 4), np.int8))
    with pytest.raises(ScheduleError, match=r"^unpack_nchw: expected a 6-d packed array, got shape \(4, 4\)$"):
        layout.unpack_nchw(np.zeros((4, 4), np.int8))


def test_dense_weight_blocks_and_int32_activations(rng):
    w = rng.integers(-128, 128, (32, 48)).astype(np.int8)
    p = layout.pack_dense_weight(w)
    assert p.shape == (2, 3, 16, 16) and p[1, 2, 3, 4] == w[19, 36]
    acc = rng.integers(-(2**31), 2**31, (1, 32, 3, 3)).astype(np.int32)
    packed = layout.pack_nchw(acc)
    assert packed.dtype == np.int32 and packed.shape == (1, 2, 3, 3, 1, 16)
    np.testing.assert_array_equal(layout.unpack_nchw(packed), acc)


def test_pad_to_multiple_fills_whole_blocks_with_zeros():
    x = np.ones((1, 3, 2, 2), np.int8)
    p = layout.pad_to_multiple(x, 1, 16)
    assert p.shape == (1, 16, 2, 2) and p[:, :3].all() and not p[:, 3:].any()
    assert layout.pad_to_multiple(p, 1, 16).shape == p.shape
    with pytest.raises(ScheduleError, match=r"^pad_to_multiple: axis 4 of a 4-d array to a multiple of 16: expected "):
        layout.pad_to_multiple(x, 4, 16)
