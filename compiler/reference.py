"""numpy references for the operators, computed in int64 and wrapped where the hardware wraps.

GEMM accumulates in int32 with wrap-around, ALU ADD/MUL/SHR wrap in int32, and STORE keeps
the low 8 bits (spec §3.6). Inputs and outputs use the packed layouts of :mod:`layout`.
"""

from __future__ import annotations

import numpy as np

from vta.compiler.layout import pack_nchw, unpack_nchw, unpack_oihw
from vta.errors import ScheduleError

__all__ = ["alu", "conv2d", "conv2d_requant", "dense", "max_pool2d", "requant", "wrap"]


def wrap(x: np.ndarray, dtype: str = "int32") -> np.ndarray:
    """Two's-complement wrap of an int64 array to ``dtype``."""
    return np.asarray(x, dtype=np.int64).astype(dtype)


def conv2d(data: np.ndarray, kernel: np.ndarray, strides: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Packed int8 data (N/b, C/c, H, W, b, c) x packed weights -> packed int32 accumulators."""
    x = unpack_nchw(data).astype(np.int64)
    w = unpack_oihw(kernel).astype(np.int64)
    if x.shape[1] != w.shape[1]:
        raise ScheduleError(f"conv2d: data has {x.shape[1]} channels, kernel expects {w.shape[1]}")
    (sh, sw), (ph, pw) = strides, padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow), np.int64)
    for di in range(kh):
        for dj in range(kw):
            win = x[:, :, di:di + sh * (oh - 1) + 1:sh, dj:dj + sw * (ow - 1) + 1:sw]
            out += np.einsum("nchw,oc->nohw", win, w[:, :, di, dj])
    return pack_nchw(wrap(out), data.shape[4], kernel.shape[4])


def requant(acc: np.ndarray, shift: int, relu: bool = False, clip: tuple[int, int] | None = None) -> np.ndarray:
    """int32 -> int8 as VTA does it: arithmetic >> shift, optional relu and clip, then the low 8 bits."""
    x = np.asarray(acc, np.int64) >> shift
    if relu:
        x = np.maximum(x, 0)
    if clip is not None:
        x = np.maximum(np.minimum(x, clip[1]), clip[0])
    return wrap(x, "int8")


def conv2d_requant(data: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], padding: tuple[int, int],
                   shift: int, relu: bool = False, clip: tuple[int, int] | None = None) -> np.ndarray:
    """conv2d fused with requantize (shift), relu and clip, as the conv2d operator computes it."""
    return requant(conv2d(data, kernel, strides, padding), shift, relu, clip)


def dense(data: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Packed (N/b, K/c, b, c) x (M/c, K/c, c, c) -> packed int32 (N/b, M/c, b, c)."""
    x = data.astype(np.int64)
    w = weight.astype(np.int64)
    return wrap(np.einsum("nkbc,mkjc->nmbj", x, w))


def alu(op: str, a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """One ALU opcode on int32 values: MIN, MAX, ADD, MUL, SHR (negative amount shifts left, spec §3.4)."""
    x, y = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if op == "SHR":
        y = np.broadcast_to(y, np.broadcast_shapes(x.shape, y.shape))
        return wrap(np.where(y >= 0, x >> np.abs(y), x << np.abs(y)))
    table = {"MIN": np.minimum, "MAX": np.maximum, "ADD": np.add, "MUL": np.multiply}
    if op not in table:
        raise ScheduleError(f"alu: unknown opcode {op!r}; allowed: MIN, MAX, ADD, MUL, SHR")
    return wrap(table[op](x, y))


def max_pool2d(data: np.ndarray, pool: tuple[int, int], strides: tuple[int, int],
               padding: tuple[int, int] = (0, 0), pad_value: int | None = 0) -> np.ndarray:
    """Max-pool over H and W of packed data.

    Padding is ``pad_value``, 0 by default because VTA's LOAD only inserts zeros (spec §3.2):
    that is a true max-pool only for inputs >= 0 (after relu). ``pad_value=None`` pads with
    the dtype's minimum, so padding never wins.
    """
    (kh, kw), (sh, sw), (ph, pw) = pool, strides, padding
    low = np.iinfo(data.dtype).min
    fill = low if pad_value is None else pad_value
    x = np.pad(data, ((0, 0), (0, 0), (ph, ph), (pw, pw), (0, 0), (0, 0)), constant_values=fill)
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.full(x.shape[:2] + (oh, ow) + x.shape[4:], low, data.dtype)
    for di in range(kh):
        for dj in range(kw):
            out = np.maximum(out, x[:, :, di:di + sh * (oh - 1) + 1:sh, dj:dj + sw * (ow - 1) + 1:sw])
    return out
