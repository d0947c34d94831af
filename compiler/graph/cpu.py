"""The CPU kernels: float32 (the model and the CPU baseline) and exact integer (the quantized reference).

Convolutions are im2col + one matrix product, the fastest honest path a numpy user has: float32
BLAS for the float model; for the integer reference the product runs in float32 when every partial
sum fits its 24-bit significand (reduction length x 128 x 128 <= 2**24, e.g. ResNet-18's stem)
and in float64 otherwise (always below 2**53): integers that fit are added exactly in any order. Spatial
operators work on axes 2 and 3, so they take NCHW and the packed NCHW1n16c layout alike.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CPU_PATH", "add_int", "conv2d_float", "conv2d_int", "dense_int", "exact_float", "gap_int", "im2col",
           "max_pool", "requantize", "round_shift", "softmax"]

CPU_PATH = "im2col + float32 BLAS (numpy)"


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """(N, C, H, W) -> (N*OH*OW, C*k*k) patches in (C, kh, kw) order, and OH, OW."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    sn, sc, sh, sw = xp.strides
    win = np.lib.stride_tricks.as_strided(xp, (n, oh, ow, c, k, k), (sn, sh * stride, sw * stride, sc, sh, sw))
    return win.reshape(n * oh * ow, c * k * k), oh, ow


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, dtype: type) -> np.ndarray:
    n = x.shape[0]
    cols, oh, ow = im2col(x.astype(dtype, copy=False), w.shape[2], stride, pad)
    out = cols @ w.reshape(w.shape[0], -1).astype(dtype, copy=False).T
    return out.reshape(n, oh, ow, w.shape[0]).transpose(0, 3, 1, 2)


def conv2d_float(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """float32 NCHW convolution plus bias."""
    return _conv(x, w, stride, pad, np.float32) + b.astype(np.float32)[:, None, None]


def exact_float(reduction: int) -> type:
    """The narrowest float type whose products and sums of ``reduction`` int8 pairs are exact."""
    return np.float32 if reduction * 128 * 128 <= 1 << 24 else np.float64


def conv2d_int(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Exact int64 accumulators of an int8 NCHW convolution (see the module note)."""
    return _conv(x, w, stride, pad, exact_float(w[0].size)).astype(np.int64)


def dense_int(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact int64 accumulators of int8 (N, K) x (M, K)."""
    t = exact_float(w.shape[1])
    return (x.astype(t) @ w.astype(t).T).astype(np.int64)


def round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    """acc / 2**shift rounded to nearest (halves up), as ``(acc + 2**(shift-1)) >> shift``; shift < 0 multiplies."""
    acc = np.asarray(acc, np.int64)
    if shift <= 0:
        return acc << -shift
    return (acc + (1 << (shift - 1))) >> shift


def requantize(acc: np.ndarray, shift: int, lo: int, hi: int) -> np.ndarray:
    """int8 output of a layer: rounded shift, then clip to [lo, hi] (relu is lo = 0)."""
    return np.clip(round_shift(acc, shift), lo, hi).astype(np.int8)


def add_int(a: np.ndarray, fa: int, b: np.ndarray, fb: int, fo: int, lo: int, hi: int) -> np.ndarray:
    """a * 2**-fa + b * 2**-fb requantized to 2**-fo: both aligned to the finer scale, summed, rounded."""
    f = max(fa, fb)
    s = (a.astype(np.int64) << (f - fa)) + (b.astype(np.int64) << (f - fb))
    return requantize(s, f - fo, lo, hi)


def max_pool(x: np.ndarray, size: int, stride: int, pad: int) -> np.ndarray:
    """Max over windows of axes 2, 3; padding is the dtype's minimum (or -inf), so it never wins."""
    fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    widths = [(0, 0)] * x.ndim
    widths[2] = widths[3] = (pad, pad)
    xp = np.pad(x, widths, constant_values=fill) if pad else x
    oh, ow = (xp.shape[2] - size) // stride + 1, (xp.shape[3] - size) // stride + 1
    out = None
    for di in range(size):
        for dj in range(size):
            win = xp[:, :, di:di + stride * (oh - 1) + 1:stride, dj:dj + stride * (ow - 1) + 1:stride]
            out = win.copy() if out is None else np.maximum(out, win)
    return out


def gap_int(x: np.ndarray) -> np.ndarray:
    """Mean over axes 2, 3 rounded to nearest (halves up), same scale and dtype."""
    hw = x.shape[2] * x.shape[3]
    s = x.astype(np.int64).sum(axis=(2, 3), keepdims=True)
    return ((2 * s + hw) // (2 * hw)).astype(x.dtype)


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis, computed in float64."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
