"""Fixtures shared by the compiler tests; the operator builders live in vta.compiler.ops.

``conv2d_packed``/``schedule_conv2d`` keep the old positional test interface for
``test_build.py`` only, as thin adapters over :mod:`vta.compiler.ops` (to be dropped once that
file builds its convolutions with ``ops.conv2d``).
"""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import ops, te

_BUILT: dict = {}


def conv2d_packed(h: int, w: int, ci_blk: int, co_blk: int, k: int, stride: int, pad: int) -> tuple:
    """(data, kernel, data_pad, conv, ewise, out) of ops.conv2d_packed with >> 4, relu, clip to 127."""
    data = te.placeholder((1, ci_blk, h, w, 1, 16), "int8", "data")
    kernel = te.placeholder((co_blk, ci_blk, k, k, 16, 16), "int8", "kernel")
    t = ops.conv2d_packed(data, kernel, stride, pad, ops.Epilogue(shift=4, relu=True, clip=(0, 127)))
    _BUILT[t.out] = t
    return t.data, t.kernel, t.data_pad, t.conv, list(t.ewise), t.out


def schedule_conv2d(tensors: tuple, tile_h, tile_w, tile_ci, tile_co, oc_nthread=1, h_nthread=1):
    """ops.schedule_conv2d_packed with the knobs given positionally."""
    cfg = ops.Conv2dConfig(tile_h=tile_h, tile_w=tile_w, tile_ci=tile_ci, tile_co=tile_co, oc_nthread=oc_nthread,
                           h_nthread=h_nthread)
    return ops.schedule_conv2d_packed(_BUILT[tensors[-1]], cfg)


@pytest.fixture
def rng():
    return np.random.default_rng(7)
