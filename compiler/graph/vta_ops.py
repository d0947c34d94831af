"""conv2d and dense for a quantized network node: the operator library's GEMM plus a bias and rounding stage.

The library's operators end in :class:`~vta.compiler.ops.Epilogue` (shift, relu, clip). A
network layer also adds a per-channel int32 bias, and rounds instead of truncating; both are
one ALU ADD of a bias tile (``bias + 2**(shift-1)``) loaded into the accumulator next to the
output tile and broadcast over its rows and columns. Shifts above 15 (the portable immediate)
become several SHR stages, which compose exactly.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from vta.compiler import te
from vta.compiler.build import build
from vta.compiler.ops.common import ACC_SCOPE
from vta.compiler.ops.conv2d import Conv2dTensors, conv2d_packed, schedule_conv2d_packed
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload, conv2d_footprint, default_conv2d_config
from vta.compiler.ops.dense import DenseTensors, default_dense_config, dense_packed, schedule_dense_packed
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.compiler.program import Program
from vta.compiler.schedule import Schedule
from vta.compiler.te import Tensor
from vta.config import get_env

__all__ = ["bias_fits", "bias_with_rounding", "conv2d_program", "dense_program", "pick_conv2d_config"]

log = logging.getLogger(__name__)

_MAX_SHIFT = 15


def bias_with_rounding(bias: np.ndarray, shift: int, padded: int) -> np.ndarray:
    """int32 bias plus the rounding offset 2**(shift-1), zero-padded to ``padded`` channels."""
    b = np.zeros(padded, np.int64)
    b[:len(bias)] = bias
    return (b + ((1 << (shift - 1)) if shift else 0)).astype(np.int32)


def _epilogue(acc: Tensor, bias_at, shift: int, lo: int, hi: int) -> tuple[list[Tensor], Tensor]:
    stages = [te.compute(acc.shape, lambda *i: acc[i] + bias_at(*i), "bias_add")]
    left = shift
    while left:
        step, prev = min(left, _MAX_SHIFT), stages[-1]
        stages.append(te.compute(acc.shape, lambda *i, p=prev, s=step: p[i] >> s, "shr"))
        left -= step
    for fn, name in ((lambda x: te.min(x, hi), "clip_hi"), (lambda x: te.max(x, lo), "clip_lo")):
        prev = stages[-1]
        stages.append(te.compute(acc.shape, lambda *i, p=prev, f=fn: f(p[i]), name))
    last = stages[-1]
    return stages, te.compute(acc.shape, lambda *i: last[i].astype("int8"), "out")


def _attach_bias(s: Schedule, bias: Tensor, reader: Tensor) -> None:
    """Load the bias tile where the first epilogue stage is computed (once per output tile)."""
    cb = s.cache_read(bias, ACC_SCOPE, [reader])
    parent, axis = s[reader].attach
    s[cb].compute_at(parent, axis)
    s[cb].pragma(s[cb].op.axis[0], "dma_copy")


def bias_fits(wl: Conv2dWorkload, cfg: Conv2dConfig) -> bool:
    """Whether the accumulator holds the output tiles and one bias tile per virtual thread."""
    acc = conv2d_footprint(wl, cfg)["local.acc_buffer"] + cfg.tile_co[1] * cfg.threads
    return acc <= get_env().ACC_BUFF_DEPTH


def pick_conv2d_config(wl: Conv2dWorkload, tuned: Conv2dConfig | None = None) -> Conv2dConfig:
    """``tuned`` (from a log), else ResNet-18's knobs for a layer of that shape, else the default tiler;
    a configuration without room for the bias tile is passed over."""
    same = [TUNED[n] for n, r in RESNET18.items() if replace(r, name=wl.name) == wl]
    for cfg in [c for c in (tuned, *same) if c is not None]:
        if bias_fits(wl, cfg):
            return cfg
        log.info("conv2d %s: %s leaves no accumulator room for the bias tile; trying the next choice", wl.name, cfg)
    return default_conv2d_config(wl)


def conv2d_program(wl: Conv2dWorkload, shift: int, lo: int, hi: int, config: Conv2dConfig | None = None) -> Program:
    """A compiled conv2d(data, kernel, bias) -> int8 with rounding requantization; args (data, kernel, bias, out)."""
    data = te.placeholder(wl.data_shape, "int8", "data")
    kernel = te.placeholder(wl.kernel_shape, "int8", "kernel")
    _, _, cob = wl.blocks()
    env = get_env()
    bias = te.placeholder((1, cob, 1, 1, 1, env.BLOCK_OUT), "int32", "bias")
    t = conv2d_packed(data, kernel, wl.stride, wl.pad, None, wl.name)
    stages, out = _epilogue(t.conv, lambda b, c, i, j, bi, ci: bias[0, c, 0, 0, 0, ci], shift, lo, hi)
    t = Conv2dTensors(data, kernel, t.data_pad, t.conv, tuple(stages), out, wl)
    s = schedule_conv2d_packed(t, config or pick_conv2d_config(wl))
    _attach_bias(s, bias, stages[0])
    return build(s, [data, kernel, bias, out], wl.name)


def dense_program(name: str, in_blocks: int, out_blocks: int, shift: int, lo: int, hi: int) -> Program:
    """A compiled dense(data, weight, bias) -> int8 with rounding requantization; args (data, weight, bias, out)."""
    env = get_env()
    data = te.placeholder((1, in_blocks, env.BATCH, env.BLOCK_IN), "int8", "data")
    weight = te.placeholder((out_blocks, in_blocks, env.BLOCK_OUT, env.BLOCK_IN), "int8", "weight")
    bias = te.placeholder((1, out_blocks, 1, env.BLOCK_OUT), "int32", "bias")
    t = dense_packed(data, weight)
    stages, out = _epilogue(t.res, lambda b, c, bi, ci: bias[0, c, 0, ci], shift, lo, hi)
    t = DenseTensors(data, weight, t.res, tuple(stages), out)
    cfg = default_dense_config(t.blocks, name)
    s = schedule_dense_packed(t, cfg)
    _attach_bias(s, bias, stages[0])
    return build(s, [data, weight, bias, out], name)
