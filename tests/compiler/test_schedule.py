"""schedule/stage/check: primitives record transformations and refuse what VTA cannot run."""

from __future__ import annotations

import pytest

from vta.compiler import te
from vta.compiler.intrin import gemm_intrin
from vta.compiler.ops import dense_packed
from vta.compiler.schedule import Fuse, Split, create_schedule
from vta.errors import ScheduleError


def _ewise(n=8):
    a = te.placeholder((n, 1, 16), "int32", "A")
    b = te.compute((n, 1, 16), lambda i, bi, c: a[i, bi, c] + 1, "B")
    return a, b


def test_split_tile_fuse_reorder_record_relations():
    a = te.placeholder((8, 8), "int32", "A")
    b = te.compute((8, 8), lambda i, j: a[i, j] + 1, "B")
    s = create_schedule(b)
    i, j = b.op.axis
    xo, yo, xi, yi = s[b].tile(i, j, 4, 2)
    assert [v.name for v in s[b].leaf_iter_vars] == ["i.outer", "j.outer", "i.inner", "j.inner"]
    assert (xo.extent, yo.extent, xi.extent, yi.extent) == (2, 4, 4, 2)
    s[b].reorder(yi, xi)
    fused = s[b].fuse(yi, xi)
    assert fused.extent == 8 and isinstance(s[b].relations[-1], Fuse)
    assert isinstance(s[b].relations[0], Split)
    outer, inner = s[b].split(yo, nparts=2)
    assert (outer.extent, inner.extent) == (2, 2)


@pytest.mark.parametrize(("call", "message"), [
    (lambda s, b, i: s[b].split(i, factor=3),
     r"^stage B: split\(i, factor=3, nparts=None\): 3 does not divide the extent 8 of i; VTA loop nests have no"),
    (lambda s, b, i: s[b].split(i), r"^stage B: split\(i, factor=None, nparts=None\): give exactly one of"),
    (lambda s, b, i: s[b].split(te.reduce_axis((0, 2), "k"), factor=2),
     r"^stage B: split: axis k is not a current loop of this stage \(loops: i, bi, c\)$"),
    (lambda s, b, i: s[b].fuse(i, b.op.axis[2]), r"^stage B: fuse\(i, c\): the loops must be adjacent"),
    (lambda s, b, i: s[b].reorder(i, i), r"^stage B: reorder: a loop is listed twice in \['i', 'i'\]$"),
    (lambda s, b, i: s[b].pragma(i, "dma"), r"^stage B: pragma\(i, 'dma'\): unknown pragma; allowed: dma_copy, alu$"),
    (lambda s, b, i: s[b].bind(i, te.reduce_axis((0, 2), "k")),
     r"^stage B: bind\(i, k\): bind to te.thread_axis\('cthread'\)"),
    (lambda s, b, i: s[b].set_scope("local.wgt_buffer"),
     r"^stage B: set_scope\('local.wgt_buffer'\): a local.wgt_buffer entry is int8 \(16, 16\), got int32 with"),
    (lambda s, b, i: s[b].set_scope("shared"), r"^stage B: set_scope\('shared'\): unknown scope; allowed: global"),
    (lambda s, b, i: s[b].compute_at(s[b], i), r"^stage B: compute_at\(B, i\): only intermediate stages"),
])
def test_primitive_errors(call, message):
    _, b = _ewise()
    s = create_schedule(b)
    with pytest.raises(ScheduleError, match=message):
        call(s, b, b.op.axis[0])


def test_cache_read_redirects_readers_and_checks_the_scope():
    a, b = _ewise()
    s = create_schedule(b)
    aa = s.cache_read(a, "local.acc_buffer", [b])
    assert aa.name == "A.local.acc_buffer" and str(s[b].op.body) == "(A.local.acc_buffer[i, bi, c] + 1)"
    assert [st.name for st in s.stages] == ["A", "A.local.acc_buffer", "B"]
    with pytest.raises(ScheduleError, match=r"^stage A.local.inp_buffer: set_scope\('local.inp_buffer'\): a local"):
        s.cache_read(a, "local.inp_buffer", [b])


def test_cache_write_gives_fresh_axes_and_must_come_first():
    _a, b = _ewise()
    s = create_schedule(b)
    bl = s.cache_write(b, "local.acc_buffer")
    assert s[bl].op.axis[0] is not b.op.axis[0] and s[b].leaf_iter_vars == list(b.op.axis)
    s[b].split(b.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"^stage B: cache_write\(B, 'local.acc_buffer'\): call cache_write"):
        s.cache_write(b, "local.acc_buffer")


def test_sram_tiles_that_overflow_the_buffer_are_refused_at_compute_at():
    a, b = _ewise(4096)
    s = create_schedule(b)
    aa = s.cache_read(a, "local.acc_buffer", [b])
    s[b].split(b.op.axis[0], factor=2048)
    s[aa].compute_at(s[b], s[b].leaf_iter_vars[0])  # 2048 entries: exactly full
    extra = s.cache_read(aa, "local.acc_buffer", [b])
    with pytest.raises(ScheduleError, match=r"^local.acc_buffer needs 4096 entries \(A.local.acc_buffer: 2048, "
                                            r"A.local.acc_buffer.local.acc_buffer: 2048\) but holds 2048"):
        s[extra].compute_at(s[b], s[b].leaf_iter_vars[0])


def test_virtual_threads_count_against_the_buffer():
    a, b = _ewise(4096)
    s = create_schedule(b)
    aa = s.cache_read(a, "local.acc_buffer", [b])
    outer, _ = s[b].split(b.op.axis[0], factor=2048)
    s[b].bind(outer, te.thread_axis("cthread"))
    with pytest.raises(ScheduleError, match=r"^local.acc_buffer needs 4096 entries \(A.local.acc_buffer: 4096\) but "
                                            r"holds 2048"):
        s[aa].compute_at(s[b], outer)


def test_alu_kernel_with_three_loops_is_refused():
    a = te.placeholder((4, 4, 4, 1, 16), "int32", "A")
    b = te.compute(a.shape, lambda i, j, k, bi, c: a[i, j, k, bi, c] >> 1, "B")
    out = te.compute(a.shape, lambda *i: b[i].astype("int8"), "C")
    s = create_schedule(out)
    s.cache_read(a, "local.acc_buffer", [b])
    s[b].set_scope("local.acc_buffer")
    i, j, k, _, _ = s[b].op.axis
    ko, ki = s[b].split(k, factor=2)
    s[b].reorder(ko, i, j, ki)
    s[b].pragma(ko, "alu")
    msg = (r"^stage B: pragma\(k.outer, 'alu'\): the micro-op kernel needs 3 loops "
           r"\(extent, dst step, src step\) \[\(2, 2, 2\), \(4, 4, 4\), \(2, 1, 1\)\]")
    with pytest.raises(ScheduleError, match=msg):
        s[b].compute_at(s[out], s[out].op.axis[0])


def test_alu_body_rules():
    a = te.placeholder((4, 1, 16), "int32", "A")
    sub = te.compute(a.shape, lambda *i: a[i] - 1, "S")
    msg = r"^stage S: pragma\(i0, 'alu'\): \(A\[i0, i1, i2\] - 1\): VTA's ALU has no SUB"
    with pytest.raises(ScheduleError, match=msg):
        create_schedule(sub)[sub].pragma(sub.op.axis[0], "alu")
    big = te.compute(a.shape, lambda *i: a[i] + 40000, "I")
    with pytest.raises(ScheduleError, match=r"immediate 40000 does not fit the 16-bit signed ALU immediate$"):
        create_schedule(big)[big].pragma(big.op.axis[0], "alu")
    nested = te.compute(a.shape, lambda *i: (a[i] >> 1) + 1, "N")
    with pytest.raises(ScheduleError, match=r"use one stage per ALU op$"):
        create_schedule(nested)[nested].pragma(nested.op.axis[0], "alu")


def test_tensorize_checks_the_loops_and_body():
    res = dense_packed(te.placeholder((1, 2, 1, 16), "int8", "A"), te.placeholder((2, 2, 16, 16), "int8", "W")).res
    s = create_schedule(res)
    bo, co, bi, ci = s[res].op.axis
    ko, ki = s[res].op.reduce_axis
    msg = r"^stage dense: tensorize\(bi\): the loops from bi inward must be the unsplit"
    with pytest.raises(ScheduleError, match=msg):
        s[res].tensorize(bi, gemm_intrin())
    s[res].reorder(ko, bo, co, bi, ci, ki)
    s[res].tensorize(bi, gemm_intrin())
    assert s[res].tensorized[0] is bi
    with pytest.raises(ScheduleError, match=r"expected the GEMM intrinsic, got 'gemm'$"):
        s[res].tensorize(bi, "gemm")


def test_a_loop_another_stage_is_computed_at_cannot_be_split_or_fused():
    _, b = _ewise()
    c = te.compute(b.shape, lambda *i: b[i] >> 1, "C")
    s = create_schedule(c)
    s[b].set_scope("local.acc_buffer")
    i, bi, _ = s[c].op.axis
    s[b].compute_at(s[c], i)
    with pytest.raises(ScheduleError, match=r"^stage C: split\(i0, factor=2, nparts=None\): B is computed at i0; "
                                            r"split or fuse before compute_at$"):
        s[c].split(i, factor=2)
    with pytest.raises(ScheduleError, match=r"^stage C: fuse: B is computed at i0; split or fuse before compute_at$"):
        s[c].fuse(i, bi)


def test_a_copy_from_strided_entries_gets_its_own_accumulator_tile():
    from vta.compiler.bound import infer_bounds
    from vta.compiler.check import sram_usage

    a = te.placeholder((1, 2, 8, 8, 1, 16), "int32", "A")
    s_in = te.compute(a.shape, lambda *i: a[i], "a_acc")
    pick = te.compute((1, 2, 4, 4, 1, 16), lambda n, c, y, x, b, k: s_in[n, c, 2 * y, 2 * x, b, k], "pick")
    out = te.compute(pick.shape, lambda *i: pick[i].astype("int8"), "out")
    s = create_schedule(out)
    for t in (s_in, pick):
        s[t].set_scope("local.acc_buffer")
        s[t].pragma(s[t].op.axis[0], "dma_copy" if t is s_in else "alu")
        s[t].compute_at(s[out], s[out].op.axis[1])
    s[out].pragma(s[out].op.axis[2], "dma_copy")
    usage = sram_usage(s, infer_bounds(s, True), True)["local.acc_buffer"]
    # the copy reads rows and columns 0, 2, .., 6 (7 x 7 entries per block) and keeps 4 x 4 of its own
    assert sorted((st.name, n) for st, n in usage) == [("a_acc", 49), ("pick", 16)]
