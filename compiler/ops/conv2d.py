"""Packed conv2d on the GEMM core, fused with the requantize epilogue, and TVM's VTA schedule template.

Data is NCHW1n16c int8, weights OIHW16o16i int8 (spec §7.1); the compute is the one of
``conv2d_packed`` in TVM's ``top/vta_conv2d.py`` (spec §7.3) and the schedule follows
``schedule_conv2d_packed`` there, knob for knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.compiler import reference, te
from vta.compiler.intrin import gemm_intrin
from vta.compiler.ops.common import Epilogue, ScheduledOp, schedule_ewise, split_vthread
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload, default_conv2d_config
from vta.compiler.schedule import Schedule, create_schedule
from vta.compiler.te import Tensor
from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["Conv2dTensors", "conv2d", "conv2d_packed", "schedule_conv2d_packed"]


@dataclass(frozen=True)
class Conv2dTensors:
    """The tensors of one packed conv2d: inputs, padded data, accumulator, epilogue stages, output."""

    data: Tensor
    kernel: Tensor
    data_pad: Tensor | None
    conv: Tensor
    ewise: tuple[Tensor, ...]
    out: Tensor
    workload: Conv2dWorkload

    @property
    def args(self) -> tuple[Tensor, Tensor, Tensor]:
        """(data, kernel, out): the arguments of ``lower``/``build``."""
        return self.data, self.kernel, self.out


def _workload(data: Tensor, kernel: Tensor, stride: int, pad: int, name: str, groups: int = 1) -> Conv2dWorkload:
    env = get_env()
    where = f"conv2d {name}"
    want_d = (env.BATCH, env.BLOCK_IN)
    if data.ndim != 6 or data.dtype != "int8" or data.shape[4:] != want_d:
        raise ScheduleError(f"{where}: data must be int8 NCHW{want_d[0]}n{want_d[1]}c (6-d, innermost {want_d}), "
                            f"got {data.dtype} {data.shape}")
    want_k = (env.BLOCK_OUT, env.BLOCK_IN)
    if kernel.ndim != 6 or kernel.dtype != "int8" or kernel.shape[4:] != want_k:
        raise ScheduleError(f"{where}: kernel must be int8 OIHW{want_k[0]}o{want_k[1]}i (6-d, innermost "
                            f"{want_k}), got {kernel.dtype} {kernel.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ScheduleError(f"{where}: groups={groups!r}: expected a positive integer")
    if kernel.shape[1] * groups != data.shape[1]:
        per = f"{kernel.shape[1]} per group x {groups} groups" if groups > 1 else f"{kernel.shape[1]}"
        raise ScheduleError(f"{where}: data has {data.shape[1]} input-channel blocks, kernel expects {per}")
    if kernel.shape[2] != kernel.shape[3]:
        raise ScheduleError(f"{where}: kernel is {kernel.shape[2]}x{kernel.shape[3]}; only square kernels")
    return Conv2dWorkload(name, data.shape[2], data.shape[3], data.shape[1] * env.BLOCK_IN,
                          kernel.shape[0] * env.BLOCK_OUT, kernel.shape[2], stride, pad, data.shape[0] * env.BATCH,
                          groups)


def conv2d_packed(data: Tensor, kernel: Tensor, stride: int = 1, pad: int = 0, epilogue: Epilogue | None = None,
                  name: str = "conv2d", groups: int = 1) -> Conv2dTensors:
    """res[b, co, i, j] = sum over (ci, di, dj, k) of data_pad * kernel in int32, then the epilogue.

    Parameters
    ----------
    data
        int8 placeholder (N/1, C/16, H, W, 1, 16).
    kernel
        int8 placeholder (O/16, C/16, K, K, 16, 16), output-channel-major blocks.
    stride, pad
        The same on H and W; padding is zeros inserted by the input DMA (spec §3.2).
    epilogue
        Shift / relu / clip stages before the int8 store (default: none, just the store).
    name
        Names the workload in error messages.
    groups
        Grouped convolution (TVM's ``group_conv2d_packed``): the kernel holds ``C/16/groups``
        input blocks, and output block ``co`` reads input block ``co // (O/16/groups) * C/16/groups + ko``.

    Returns
    -------
    Conv2dTensors

    Raises
    ------
    ScheduleError
        If the layouts, dtypes or channel counts do not match, or the kernel does not fit.

    Examples
    --------
    >>> data = te.placeholder((1, 1, 8, 8, 1, 16), "int8", "data")
    >>> kernel = te.placeholder((2, 1, 3, 3, 16, 16), "int8", "kernel")
    >>> conv2d_packed(data, kernel, 1, 1).out.shape
    (1, 2, 8, 8, 1, 16)
    """
    wl = _workload(data, kernel, stride, pad, name, groups)
    dpad = te.pad(data, (0, 0, pad, pad, 0, 0), name="data_pad") if pad else None
    src = dpad if dpad is not None else data
    ko = te.reduce_axis((0, kernel.shape[1]), "ko")
    per_group = kernel.shape[0] // groups
    di = te.reduce_axis((0, wl.kernel), "di")
    dj = te.reduce_axis((0, wl.kernel), "dj")
    ki = te.reduce_axis((0, data.shape[5]), "ki")
    def cin(c: te.Expr, k: te.Expr) -> te.Expr:
        return k if groups == 1 else c // per_group * kernel.shape[1] + k

    conv = te.compute(wl.out_shape, lambda b, c, i, j, bi, cj: te.sum(
        src[b, cin(c, ko), i * stride + di, j * stride + dj, bi, ki].astype("int32")
        * kernel[c, ko, di, dj, cj, ki].astype("int32"), axis=[ko, di, dj, ki]), "conv", "conv2d_dense")
    ewise, out = (epilogue or Epilogue()).apply(conv)
    return Conv2dTensors(data, kernel, dpad, conv, tuple(ewise), out, wl)


def schedule_conv2d_packed(tensors: Conv2dTensors, config: Conv2dConfig | None = None) -> Schedule:
    """TVM's VTA conv2d template (spec §7.3) with ``config`` (default: :func:`default_conv2d_config`).

    Loop order of the output: (b, h_outer, co_outer, w_outer, co_inner, h_inner, w_inner, lanes);
    the conv, its epilogue and its tile live in the accumulator at ``w_outer``; a thread count
    of 2 splits ``co_outer`` / ``h_outer`` by 2 and binds the inner part to a virtual thread
    placed outermost (TVM swaps it with ``b``, the same order when the batch is 1); the
    conv loops are (b, ci_outer, ci_inner, w, dj, di, co, h, GEMM) with the input and weight tiles
    loaded at ``ci_outer``.

    Raises
    ------
    ScheduleError
        If the configuration does not match the workload (naming the knob) or does not fit SRAM.

    Examples
    --------
    >>> data = te.placeholder((1, 1, 8, 8, 1, 16), "int8", "data")
    >>> kernel = te.placeholder((2, 1, 3, 3, 16, 16), "int8", "kernel")
    >>> cfg = Conv2dConfig(tile_h=[2, 4], tile_w=[1, 8], tile_ci=[1, 1], tile_co=[2, 1], oc_nthread=2)
    >>> s = schedule_conv2d_packed(conv2d_packed(data, kernel, 1, 1), cfg)
    """
    from vta.compiler.tune.dispatch import logged_config  # the best logged knobs under tune.apply_best

    cfg = config or logged_config(tensors.workload) or default_conv2d_config(tensors.workload)
    cfg.check(tensors.workload)
    conv, out = tensors.conv, tensors.out
    s = create_schedule(out)
    if tensors.data_pad is not None:
        cdata = tensors.data_pad
        s[cdata].set_scope("local.inp_buffer")
    else:
        cdata = s.cache_read(tensors.data, "local.inp_buffer", [conv])
    ckernel = s.cache_read(tensors.kernel, "local.wgt_buffer", [conv])
    s[conv].set_scope("local.acc_buffer")
    b, c, y, x, bi, ci = s[out].op.axis
    c_o, c_i = s[out].split(c, factor=cfg.tile_co[1])
    y_o, y_i = s[out].split(y, factor=cfg.tile_h[1])
    x_o, x_i = s[out].split(x, factor=cfg.tile_w[1])
    s[out].reorder(b, y_o, c_o, x_o, c_i, y_i, x_i, bi, ci)
    s[conv].compute_at(s[out], x_o)
    schedule_ewise(s, tensors.ewise, s[out], x_o)
    for n, axis in ((cfg.oc_nthread, c_o), (cfg.h_nthread, y_o)):
        if n > 1:
            split_vthread(s[out], axis, n)
    _, cc, cy, cx, cbi, cci = s[conv].op.axis
    k_o, d_i, d_j, k_i = s[conv].op.reduce_axis
    s[conv].reorder(k_o, cx, d_j, d_i, cc, cy, cbi, cci, k_i)
    k_oo, _ = s[conv].split(k_o, factor=cfg.tile_ci[1])
    s[cdata].compute_at(s[conv], k_oo)
    s[ckernel].compute_at(s[conv], k_oo)
    s[cdata].pragma(s[cdata].op.axis[0], "dma_copy")
    s[ckernel].pragma(s[ckernel].op.axis[0], "dma_copy")
    s[conv].tensorize(cbi, gemm_intrin())
    s[out].pragma(c_i, "dma_copy")
    return s


def conv2d(workload: Conv2dWorkload, config: Conv2dConfig | None = None,
           epilogue: Epilogue | None = None) -> ScheduledOp:
    """A scheduled packed conv2d for ``workload``, with its numpy reference.

    Parameters
    ----------
    workload
        The layer, e.g. ``resnet18.RESNET18["C2"]``.
    config
        Template knobs, e.g. ``resnet18.TUNED["C2"]`` (default: :func:`default_conv2d_config`).
    epilogue
        Shift / relu / clip before the int8 store.

    Returns
    -------
    ScheduledOp
        Arguments (data, kernel, out).

    Raises
    ------
    ScheduleError
        If the configuration does not fit the workload or the SRAMs.

    Examples
    --------
    >>> op = conv2d(Conv2dWorkload("small", 8, 8, 16, 32, 3, 1, 1), epilogue=Epilogue(shift=4))
    >>> [t.shape for t in op.args]
    [(1, 1, 8, 8, 1, 16), (2, 1, 3, 3, 16, 16), (1, 2, 8, 8, 1, 16)]
    """
    wl = workload
    data = te.placeholder(wl.data_shape, "int8", "data")
    kernel = te.placeholder(wl.kernel_shape, "int8", "kernel")
    ep = epilogue or Epilogue()
    tensors = conv2d_packed(data, kernel, wl.stride, wl.pad, ep, wl.name, wl.groups)
    s = schedule_conv2d_packed(tensors, config)
    strides, padding, g = (wl.stride, wl.stride), (wl.pad, wl.pad), wl.groups

    def ref(d: np.ndarray, k: np.ndarray) -> np.ndarray:
        ci, co = d.shape[1] // g, k.shape[0] // g
        return np.concatenate([reference.conv2d(d[:, i * ci:(i + 1) * ci], k[i * co:(i + 1) * co], strides, padding)
                               for i in range(g)], axis=1)

    return ScheduledOp(wl.name, s, tensors.args, lambda d, k: ep.reference(ref(d, k)))
