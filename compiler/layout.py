"""Pack and unpack the blocked layouts VTA's SRAM entries need (spec §7.1), in pure numpy.

The innermost (b, c) block of an activation is one INP entry, the (c_o, c_i) block of a
weight one WGT entry (output-channel-major), an int32 (b, c) block one ACC entry.
"""

from __future__ import annotations

import numpy as np

from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["pack_dense", "pack_dense_weight", "pack_nchw", "pack_oihw", "pad_to_multiple", "unpack_dense",
           "unpack_nchw", "unpack_oihw"]


def _blocks(shape: tuple[int, ...], factors: dict[int, int], what: str) -> None:
    for axis, f in factors.items():
        if shape[axis] % f:
            raise ScheduleError(f"{what}: dimension {axis} of shape {shape} is {shape[axis]}, not a multiple of {f}; "
                                "zero-pad it first")


def _pack_blocked(x: np.ndarray, f0: int, f1: int, what: str, layout: str) -> np.ndarray:
    """(A, B, H, W) -> (A/f0, B/f1, H, W, f0, f1): activations and conv weights share this transform."""
    if x.ndim != 4:
        raise ScheduleError(f"{what}: expected a 4-d {layout} array, got shape {x.shape}")
    a, b, h, w = x.shape
    _blocks(x.shape, {0: f0, 1: f1}, what)
    return np.ascontiguousarray(x.reshape(a // f0, f0, b // f1, f1, h, w).transpose(0, 2, 4, 5, 1, 3))


def _unpack_blocked(y: np.ndarray, what: str) -> np.ndarray:
    if y.ndim != 6:
        raise ScheduleError(f"{what}: expected a 6-d packed array, got shape {y.shape}")
    ao, bo, h, w, f0, f1 = y.shape
    return np.ascontiguousarray(y.transpose(0, 4, 1, 5, 2, 3).reshape(ao * f0, bo * f1, h, w))


def pack_nchw(x: np.ndarray, bn: int | None = None, cn: int | None = None) -> np.ndarray:
    """NCHW -> NCHW{bn}n{cn}c, shape (N/bn, C/cn, H, W, bn, cn)."""
    env = get_env()
    return _pack_blocked(x, bn or env.BATCH, cn or env.BLOCK_IN, "pack_nchw", "NCHW")


def unpack_nchw(y: np.ndarray) -> np.ndarray:
    """(N/bn, C/cn, H, W, bn, cn) -> NCHW."""
    return _unpack_blocked(y, "unpack_nchw")


def pack_oihw(w: np.ndarray, con: int | None = None, cin: int | None = None) -> np.ndarray:
    """OIHW -> OIHW{con}o{cin}i, shape (O/con, I/cin, KH, KW, con, cin)."""
    env = get_env()
    return _pack_blocked(w, con or env.BLOCK_OUT, cin or env.BLOCK_IN, "pack_oihw", "OIHW")


def unpack_oihw(p: np.ndarray) -> np.ndarray:
    """(O/con, I/cin, KH, KW, con, cin) -> OIHW."""
    return _unpack_blocked(p, "unpack_oihw")


def pack_dense(x: np.ndarray, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """(N, K) -> (N/rows, K/cols, rows, cols): data with rows=BATCH, weights with rows=BLOCK_OUT."""
    env = get_env()
    rows, cols = rows or env.BATCH, cols or env.BLOCK_IN
    if x.ndim != 2:
        raise ScheduleError(f"pack_dense: expected a 2-d array, got shape {x.shape}")
    n, k = x.shape
    _blocks(x.shape, {0: rows, 1: cols}, "pack_dense")
    return np.ascontiguousarray(x.reshape(n // rows, rows, k // cols, cols).transpose(0, 2, 1, 3))


def pack_dense_weight(w: np.ndarray) -> np.ndarray:
    """(M, K) weights -> (M/BLOCK_OUT, K/BLOCK_IN, BLOCK_OUT, BLOCK_IN), one WGT entry per block (spec §7.1)."""
    env = get_env()
    return pack_dense(w, env.BLOCK_OUT, env.BLOCK_IN)


def pad_to_multiple(x: np.ndarray, axis: int, multiple: int) -> np.ndarray:
    """Zero-pad ``axis`` at its end up to a multiple of ``multiple`` (channels that do not fill a block, spec §7.1).

    Examples
    --------
    >>> pad_to_multiple(np.ones((1, 3, 2, 2), np.int8), 1, 16).shape
    (1, 16, 2, 2)
    """
    if not -x.ndim <= axis < x.ndim or multiple <= 0:
        raise ScheduleError(f"pad_to_multiple: axis {axis} of a {x.ndim}-d array to a multiple of {multiple}: "
                            "expected an existing axis and a positive multiple")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, -x.shape[axis] % multiple)
    return np.pad(x, widths)


def unpack_dense(y: np.ndarray) -> np.ndarray:
    """(N/rows, K/cols, rows, cols) -> (N, K)."""
    if y.ndim != 4:
        raise ScheduleError(f"unpack_dense: expected a 4-d packed array, got shape {y.shape}")
    no, ko, rows, cols = y.shape
    return np.ascontiguousarray(y.transpose(0, 2, 1, 3).reshape(no * rows, ko * cols))
