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
