"""Builders shared by the compiler tests: packed dense and conv2d with the §7.3 template."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import te
from vta.compiler.intrin import gemm_intrin
from vta.compiler.schedule import create_schedule


def dense_packed(n_blk: int, k_blk: int, m_blk: int):
    data = te.placeholder((n_blk, k_blk, 1, 16), "int8", "A")
    weight = te.placeholder((m_blk, k_blk, 16, 16), "int8", "W")
    ko = te.reduce_axis((0, k_blk), "ko")
    ki = te.reduce_axis((0, 16), "ki")
    res = te.compute((n_blk, m_blk, 1, 16), lambda bo, co, bi, ci: te.sum(
        data[bo, ko, bi, ki].astype("int32") * weight[co, ko, ci, ki].astype("int32"), axis=[ko, ki]), "C")
    return data, weight, res


def conv2d_packed(h: int, w: int, ci_blk: int, co_blk: int, k: int, stride: int, pad: int):
    """Compute of §7.3 plus requantize (>> 4), relu and clip, then the int8 cast that is stored."""
    data = te.placeholder((1, ci_blk, h, w, 1, 16), "int8", "data")
    kernel = te.placeholder((co_blk, ci_blk, k, k, 16, 16), "int8", "kernel")
    dpad = te.pad(data, (0, 0, pad, pad, 0, 0), name="data_pad")
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    ko = te.reduce_axis((0, ci_blk), "ko")
    di = te.reduce_axis((0, k), "di")
    dj = te.reduce_axis((0, k), "dj")
    ki = te.reduce_axis((0, 16), "ki")
    conv = te.compute((1, co_blk, oh, ow, 1, 16), lambda b, c, i, j, bi, cj: te.sum(
        dpad[b, ko, i * stride + di, j * stride + dj, bi, ki].astype("int32")
        * kernel[c, ko, di, dj, cj, ki].astype("int32"), axis=[ko, di, dj, ki]), "conv")
    shr = te.compute(conv.shape, lambda *i: conv[i] >> 4, "shr")
    lo = te.compute(conv.shape, lambda *i: te.max(shr[i], 0), "relu")
    hi = te.compute(conv.shape, lambda *i: te.min(lo[i], 127), "clip")
    out = te.compute(conv.shape, lambda *i: hi[i].astype("int8"), "out")
    return data, kernel, dpad, conv, [shr, lo, hi], out


def schedule_conv2d(tensors, tile_h, tile_w, tile_ci, tile_co, oc_nthread=1, h_nthread=1):
    """The conv2d template of spec §7.3 with its knobs ([outer, inner] splits, thread counts)."""
    _, kernel, dpad, conv, ewise, out = tensors
    s = create_schedule(out)
    s[dpad].set_scope("local.inp_buffer")
    s[conv].set_scope("local.acc_buffer")
    for t in ewise:
        s[t].set_scope("local.acc_buffer")
        s[t].pragma(s[t].op.axis[0], "alu")
    kbuf = s.cache_read(kernel, "local.wgt_buffer", [conv])
    b, c, y, x, bi, ci = s[out].op.axis
    y_o, y_i = s[out].split(y, factor=tile_h[1])
    x_o, x_i = s[out].split(x, factor=tile_w[1])
    c_o, c_i = s[out].split(c, factor=tile_co[1])
    s[out].reorder(b, c_o, y_o, x_o, c_i, y_i, x_i, bi, ci)
    if oc_nthread > 1:
        v_t, c_o = s[out].split(c_o, nparts=oc_nthread)
        s[out].reorder(v_t, b)
        s[out].bind(v_t, te.thread_axis("cthread"))
    if h_nthread > 1:
        v_t, y_o = s[out].split(y_o, nparts=h_nthread)
        s[out].reorder(v_t, b)
        s[out].bind(v_t, te.thread_axis("cthread"))
    s[conv].compute_at(s[out], x_o)
    for t in ewise:
        s[t].compute_at(s[out], x_o)
    s[out].pragma(c_i, "dma_copy")
    _, cc, cy, cx, cbi, cci = s[conv].op.axis
    k_o, d_i, d_j, k_i = s[conv].op.reduce_axis
    s[conv].reorder(k_o, cx, d_j, d_i, cc, cy, cbi, cci, k_i)
    k_oo, _ = s[conv].split(k_o, factor=tile_ci[1])
    s[dpad].compute_at(s[conv], k_oo)
    s[kbuf].compute_at(s[conv], k_oo)
    s[dpad].pragma(s[dpad].op.axis[0], "dma_copy")
    s[kbuf].pragma(s[kbuf].op.axis[0], "dma_copy")
    s[conv].tensorize(cbi, gemm_intrin())
    return s


@pytest.fixture
def rng():
    return np.random.default_rng(7)
