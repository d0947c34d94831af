"""lower: schedules become loop nests that compute exactly what the tensor expression says."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler import lower, reference, te
from vta.compiler.interp import evaluate, run
from vta.compiler.intrin import gemm_intrin
from vta.compiler.lower.pipeline import PASSES
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, Epilogue, conv2d, conv2d_packed, dense_packed
from vta.compiler.ops import schedule_conv2d_packed as schedule_conv2d
from vta.compiler.schedule import create_schedule
from vta.errors import ScheduleError


def _dense_schedule(n_blk, k_blk, m_blk):
    data = te.placeholder((n_blk, k_blk, 1, 16), "int8", "A")
    weight = te.placeholder((m_blk, k_blk, 16, 16), "int8", "W")
    dense = dense_packed(data, weight)
    res, out = dense.res, dense.out
    s = create_schedule(out)
    s[res].set_scope("local.acc_buffer")
    dbuf = s.cache_read(data, "local.inp_buffer", [res])
    wbuf = s.cache_read(weight, "local.wgt_buffer", [res])
    _bo, co, bi, _ci = s[out].op.axis
    s[res].compute_at(s[out], co)
    rbo, rco, rbi, rci = s[res].op.axis
    ko, ki = s[res].op.reduce_axis
    s[res].reorder(ko, rbo, rco, rbi, rci, ki)
    s[dbuf].compute_at(s[res], ko)
    s[wbuf].compute_at(s[res], ko)
    s[dbuf].pragma(s[dbuf].op.axis[0], "dma_copy")
    s[wbuf].pragma(s[wbuf].op.axis[0], "dma_copy")
    s[res].tensorize(rbi, gemm_intrin())
    s[out].pragma(bi, "dma_copy")
    return s, data, weight, out


def test_pipeline_lists_its_passes():
    assert [p.__name__ for p in PASSES] == ["simplify_func"]


def test_dense_dump_shows_tiles_pragmas_and_gemm():
    s, data, weight, out = _dense_schedule(1, 4, 2)
    text = str(lower(s, [data, weight, out], "dense", debug=True))
    assert text.splitlines()[0] == ("func dense(A: int8[1, 4, 1, 16] @global, W: int8[2, 4, 16, 16] @global, "
                                    "out: int8[1, 2, 1, 16] @global) {")
    assert "alloc dense: int32[1, 1, 1, 16] @local.acc_buffer" in text
    assert "gemm.reset(dense[0, 0, 0, 0])" in text
    assert "gemm(dense[0, 0, 0, 0] += A.local.inp_buffer[0, 0, 0, 0] x W.local.wgt_buffer[0, 0, 0, 0])" in text
    assert text.count("// pragma dma_copy") == 3


def test_dense_is_bit_exact(rng):
    s, data, weight, out = _dense_schedule(2, 3, 2)
    func = lower(s, [data, weight, out])
    a = rng.integers(-128, 128, data.shape).astype(np.int8)
    w = rng.integers(-128, 128, weight.shape).astype(np.int8)
    got = np.zeros(out.shape, np.int8)
    run(func, a, w, got)
    np.testing.assert_array_equal(got, reference.dense(a, w).astype(np.int8))


@pytest.mark.parametrize(("shape", "knobs"), [
    ((8, 8, 32, 64, 3, 1, 1), ([2, 4], [1, 8], [2, 1], [2, 2], 2, 1)),
    ((8, 8, 32, 32, 3, 2, 1), ([2, 2], [1, 4], [1, 2], [1, 2], 1, 2)),
    ((6, 6, 16, 32, 1, 2, 0), ([1, 3], [1, 3], [1, 1], [2, 1], 2, 1)),
])
def test_conv2d_template_is_bit_exact(rng, shape, knobs):
    th, tw, tci, tco, oc_t, h_t = knobs
    cfg = Conv2dConfig(tile_h=th, tile_w=tw, tile_ci=tci, tile_co=tco, oc_nthread=oc_t, h_nthread=h_t)
    op = conv2d(Conv2dWorkload("t", *shape), cfg, Epilogue(shift=4, relu=True, clip=(0, 127)))
    data, kernel, out = op.args
    func = lower(op.schedule, op.args, debug=True)
    d, k = op.random_inputs(rng)
    got = op.empty_output()
    run(func, d, k, got)
    want = op.reference(d, k)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(evaluate(out, {data: d, kernel: k}), want)
    assert "for vthread" in str(func)


def test_conv2d_padding_is_read_with_absolute_coordinates():
    data = te.placeholder((1, 1, 8, 8, 1, 16), "int8", "data")
    kernel = te.placeholder((1, 1, 3, 3, 16, 16), "int8", "kernel")
    cfg = Conv2dConfig(tile_h=[2, 4], tile_w=[1, 8], tile_ci=[1, 1], tile_co=[1, 1])
    text = str(lower(schedule_conv2d(conv2d_packed(data, kernel, 1, 1), cfg)))
    assert "((i2.outer * 4) + idx2) >= 1" in text


def test_lower_refuses_sram_stage_nothing_fills():
    a = te.placeholder((4, 1, 16), "int32", "A")
    b = te.compute(a.shape, lambda *i: a[i] >> 1, "B")
    c = te.compute(a.shape, lambda *i: b[i].astype("int8"), "C")
    s = create_schedule(c)
    s[b].set_scope("local.acc_buffer")
    with pytest.raises(ScheduleError, match=r"^stage B in local.acc_buffer has no dma_copy/alu pragma and is not "):
        lower(s)


def test_lower_refuses_consumer_outside_the_attach_loop():
    a = te.placeholder((4, 1, 16), "int32", "A")
    b = te.compute(a.shape, lambda *i: a[i] >> 1, "B")
    c = te.compute(a.shape, lambda *i: b[i] + 1, "C")
    d = te.compute(a.shape, lambda *i: c[i] + 2, "D")
    s = create_schedule(d)
    s[b].compute_at(s[d], s[d].op.axis[0])
    with pytest.raises(ScheduleError, match=r"^stage B: compute_at\(D, i0\): its consumer C runs outside that loop"):
        lower(s)
