"""Packed conv2d_transpose (DCGAN's up-sampling layers) as TVM's VTA template computes it.

TVM's ``conv2d_transpose_packed`` (vta/python/vta/top/vta_conv2d_transpose.py) inserts
``stride - 1`` zeros between input pixels, pads the result by ``kernel - 1 - pad`` and runs a
stride-1 convolution over it with the kernel as stored (output-channel-major, already in the
orientation that convolution needs). The zero insertion is host work (``dilate``); the
accelerator runs exactly the conv2d template on the dilated tensor, with the same seven knobs
(``tile_h``/``tile_w`` split the output rows and columns), so logged configurations apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.compiler import reference
from vta.compiler.layout import pack_nchw, unpack_nchw, unpack_oihw
from vta.compiler.ops.common import Epilogue, ScheduledOp, check_shape_fields
from vta.compiler.ops.conv2d import conv2d
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.errors import ScheduleError

__all__ = ["Conv2dTransposeWorkload", "conv2d_transpose", "conv2d_transpose_reference", "dilate"]


@dataclass(frozen=True)
class Conv2dTransposeWorkload:
    """One conv2d_transpose layer: square ``kernel``, equal ``stride`` and ``pad`` on H and W, no output padding.

    Examples
    --------
    >>> wl = Conv2dTransposeWorkload("up", 4, 4, 1024, 512, 4, 2, 1)
    >>> (wl.out_h, wl.as_conv2d().h, wl.as_conv2d().pad)
    (8, 7, 2)
    """

    name: str
    h: int
    w: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    pad: int
    batch: int = 1

    def __post_init__(self) -> None:
        check_shape_fields(self, "conv2d_transpose")
        if self.pad > self.kernel - 1:
            raise ScheduleError(f"conv2d_transpose {self.name}: pad={self.pad} must be at most kernel - 1 = "
                                f"{self.kernel - 1}")

    @property
    def out_h(self) -> int:
        return (self.h - 1) * self.stride - 2 * self.pad + self.kernel

    @property
    def out_w(self) -> int:
        return (self.w - 1) * self.stride - 2 * self.pad + self.kernel

    def as_conv2d(self) -> Conv2dWorkload:
        """The stride-1 conv2d the accelerator runs, over the dilated input padded by ``kernel - 1 - pad``."""
        return Conv2dWorkload(self.name, (self.h - 1) * self.stride + 1, (self.w - 1) * self.stride + 1,
                              self.in_channels, self.out_channels, self.kernel, 1, self.kernel - 1 - self.pad,
                              self.batch)


def dilate(data: np.ndarray, stride: int) -> np.ndarray:
    """Packed (N, C, H, W, b, c) data with ``stride - 1`` zero rows/columns between pixels (host side)."""
    n, c, h, w, b, blk = data.shape
    out = np.zeros((n, c, (h - 1) * stride + 1, (w - 1) * stride + 1, b, blk), data.dtype)
    out[:, :, ::stride, ::stride] = data
    return out


def conv2d_transpose_reference(data: np.ndarray, kernel: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """int32 accumulators of TVM's conv2d_transpose_packed from undilated packed data, by scattering each input.

    out[o, i*s + q - kh, j*s + q - kw] += x[c, i, j] * K[o, c, kh, kw] with q = kernel - 1 - pad: an
    independent formulation of what the accelerator computes as a convolution over the dilated input.
    """
    x = unpack_nchw(data).astype(np.int64)
    k = unpack_oihw(kernel).astype(np.int64)
    n, _, h, w = x.shape
    o, _, kh_n, kw_n = k.shape
    q = kh_n - 1 - pad
    oh, ow = (h - 1) * stride + kh_n - 2 * pad, (w - 1) * stride + kw_n - 2 * pad
    full = np.zeros((n, o, (h - 1) * stride + 1 + 2 * kh_n, (w - 1) * stride + 1 + 2 * kw_n), np.int64)
    for kh in range(kh_n):
        for kw in range(kw_n):
            contrib = np.einsum("nchw,oc->nohw", x, k[:, :, kh, kw])
            y0, x0 = q - kh + kh_n, q - kw + kw_n  # offset by the kernel size so every index is >= 0
            full[:, :, y0:y0 + (h - 1) * stride + 1:stride, x0:x0 + (w - 1) * stride + 1:stride] += contrib
    out = full[:, :, kh_n:kh_n + oh, kw_n:kw_n + ow]
    return pack_nchw(reference.wrap(out), data.shape[4], kernel.shape[4])


def conv2d_transpose(workload: Conv2dTransposeWorkload, config: Conv2dConfig | None = None,
                     epilogue: Epilogue | None = None) -> ScheduledOp:
    """A scheduled packed conv2d_transpose; its data argument is the *dilated* input (:func:`dilate`).

    ``config`` holds the conv2d template's knobs over the output (default: the conv2d tiler on
    the equivalent convolution). The reference undilates the data it is given and scatters.

    Raises
    ------
    ScheduleError
        If the configuration does not fit the workload or the SRAMs.
    """
    wl = workload
    op = conv2d(wl.as_conv2d(), config, epilogue)
    ep = epilogue or Epilogue()

    def ref(d: np.ndarray, k: np.ndarray) -> np.ndarray:
        return ep.reference(conv2d_transpose_reference(d[:, :, ::wl.stride, ::wl.stride], k, wl.stride, wl.pad))

    return ScheduledOp(wl.name, op.schedule, op.args, ref)
