"""lower: schedules become loop nests that compute exactly what the tensor expression says."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.conftest import conv2d_packed, dense_packed, schedule_conv2d
from vta.compiler import lower, reference, te
from vta.compiler.interp import evaluate, run
from vta.compiler.intrin import gemm_intrin
from vta.compiler.lower.pipeline import PASSES
from vta.compiler.schedule import create_schedule
from vta.errors import ScheduleError


def _dense_schedule(n_blk, k_blk, m_blk):
    data, weight, res = dense_packed(n_blk, k_blk, m_blk)
    out = te.compute(res.shape, lambda *i: res[i].astype("int8"), "out")
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
    assert "alloc C: int32[1, 1, 1, 16] @local.acc_buffer" in text
    assert "gemm.reset(C[0, 0, 0, 0])" in text
    assert "gemm(C[0, 0, 0, 0] += A.local.inp_buffer[0, 0, 0, 0] x W.local.wgt_buffer[0, 0, 0, 0])" in text
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
    ((8, 8, 2, 4, 3, 1, 1), ([2, 4], [1, 8], [2, 1], [2, 2], 2, 1)),
    ((8, 8, 2, 2, 3, 2, 1), ([2, 2], [1, 4], [1, 2], [1, 2], 1, 2)),
    ((6, 6, 1, 2, 1, 2, 0), ([1, 3], [1, 3], [1, 1], [2, 1], 2, 1)),
])
def test_conv2d_template_is_bit_exact(rng, shape, knobs):
    tensors = conv2d_packed(*shape)
    data, kernel, out = tensors[0], tensors[1], tensors[5]
    func = lower(schedule_conv2d(tensors, *knobs), [data, kernel, out], debug=True)
    d = rng.integers(-128, 128, data.shape).astype(np.int8)
    k = rng.integers(-128, 128, kernel.shape).astype(np.int8)
    got = np.zeros(out.shape, np.int8)
    run(func, d, k, got)
    _, _, _, _, stride, pad = shape[1:]
    want = reference.conv2d_requant(d, k, (stride, stride), (pad, pad), 4, relu=True, clip=(0, 127))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(evaluate(out, {data: d, kernel: k}), want)
    assert "for vthread" in str(func)


def test_conv2d_padding_is_read_with_absolute_coordinates():
    tensors = conv2d_packed(8, 8, 1, 1, 3, 1, 1)
    text = str(lower(schedule_conv2d(tensors, [2, 4], [1, 8], [1, 1], [1, 1])))
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
