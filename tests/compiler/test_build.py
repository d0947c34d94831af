"""build: schedules compile to VTA programs that run bit-exact on the runtime's backends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.compiler.test_lower import _dense_schedule
from vta.compiler import reference
from vta.compiler.build import build
from vta.compiler.codegen.ops import COMPUTE, LOAD, STORE, KernelOp, LoadOp, StoreOp
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, Epilogue, conv2d
from vta.compiler.ops.alu import elementwise
from vta.compiler.ops.dense import dense
from vta.compiler.ops.pool import max_pool2d
from vta.errors import BackendError
from vta.runtime import Runtime
from vta.sim.vector import load_vector, run_vector


def _conv(shape, knobs, rng):
    """(program, data, kernel, expected) of a packed conv2d with >> 4, relu and clip to 127."""
    h, w, ci_blk, co_blk, k, stride, pad = shape
    tile_h, tile_w, tile_ci, tile_co, oc_nthread, h_nthread = knobs
    wl = Conv2dWorkload("conv", h, w, 16 * ci_blk, 16 * co_blk, k, stride, pad)
    cfg = Conv2dConfig(tile_h=tile_h, tile_w=tile_w, tile_ci=tile_ci, tile_co=tile_co, oc_nthread=oc_nthread,
                       h_nthread=h_nthread)
    op = conv2d(wl, cfg, Epilogue(shift=4, relu=True, clip=(0, 127)))
    a, kern = op.random_inputs(rng)
    want = np.clip(reference.conv2d(a, kern, (stride, stride), (pad, pad)).astype(np.int64) >> 4, 0, 127)
    return build(op.schedule, op.args, "conv"), a, kern, want.astype(np.int8)


@pytest.mark.parametrize("blocks", [(1, 1, 1), (2, 3, 2), (1, 8, 4)])
def test_dense_runs_bit_exact(blocks, rng):
    s, data, weight, out = _dense_schedule(*blocks)
    prog = build(s, [data, weight, out], "dense")
    a = rng.integers(-128, 128, data.shape).astype(np.int8)
    w = rng.integers(-128, 128, weight.shape).astype(np.int8)
    got = np.zeros(out.shape, np.int8)
    with Runtime("sim") as rt:
        info = prog.run(a, w, got, runtime=rt)
    np.testing.assert_array_equal(got, reference.dense(a, w).astype(np.int8))
    assert info.runs == 1 and info.instructions > len(prog.ops)


CONVS = {
    "3x3 s1 p1, oc threads": ((14, 14, 4, 4, 3, 1, 1), ([1, 14], [1, 14], [2, 2], [2, 2], 2, 1)),
    "3x3 s2 p1, h threads": ((28, 28, 2, 4, 3, 2, 1), ([2, 7], [1, 14], [2, 1], [2, 2], 1, 2)),
    "1x1 s2 p0": ((14, 14, 2, 2, 1, 2, 0), ([1, 7], [1, 7], [1, 2], [1, 2], 1, 1)),
    "3x3 s1 p1 row tiles": ((8, 8, 2, 2, 3, 1, 1), ([4, 2], [2, 4], [1, 2], [1, 2], 1, 1)),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_conv2d_with_epilogue_runs_bit_exact(name, rng):
    prog, a, w, want = _conv(*CONVS[name], rng)
    got = np.zeros(want.shape, np.int8)
    with Runtime("sim") as rt:
        prog.run(a, w, got, runtime=rt)
    np.testing.assert_array_equal(got, want)


OPS = {
    "dense tiled": lambda: dense(1, 512, 256, epilogue=Epilogue(shift=8, clip=(-128, 127))),
    "add": lambda: elementwise((1, 4, 8, 8, 1, 16), "add", epilogue=Epilogue(shift=1, clip=(-128, 127))),
    "add tiled": lambda: elementwise((1, 8, 28, 28, 1, 16), "add", max_entries=512),
    "max imm": lambda: elementwise((1, 2, 4, 4, 1, 16), "max", imm=-7),
    "min": lambda: elementwise((1, 2, 4, 4, 1, 16), "min"),
    "shr imm relu": lambda: elementwise((1, 2, 4, 4, 1, 16), "shr", imm=3, epilogue=Epilogue(relu=True)),
    "max-pool 3x3 s2 p1": lambda: max_pool2d((1, 2, 16, 16, 1, 16), 3, 2, 1, Epilogue(clip=(-128, 127))),
    "max-pool 2x2 s2": lambda: max_pool2d((1, 2, 8, 8, 1, 16), 2, 2, 0),
}


@pytest.mark.parametrize("name", list(OPS))
def test_operators_run_bit_exact_on_the_simulator(name, rng):
    op = OPS[name]()
    prog = build(op.schedule, op.args, name.replace(" ", "_"))
    inputs = op.random_inputs(rng)
    if "pool" in name:
        inputs = [np.abs(x) for x in inputs]  # DMA padding is 0: exact for inputs >= 0, as after relu
    out = op.empty_output()
    with Runtime("sim") as rt:
        prog.run(*inputs, out, runtime=rt)
    np.testing.assert_array_equal(out, op.reference(*inputs))


def test_same_program_on_the_emulated_board(board, env, rng):
    from vta.runtime.backends.board import BoardBackend

    prog, a, w, want = _conv(*CONVS["3x3 s1 p1, oc threads"], rng)
    got = np.zeros(want.shape, np.int8)
    with Runtime(BoardBackend(env, emulator=board, timeout_s=5.0), env=env) as rt:
        prog.run(a, w, got, runtime=rt)
    np.testing.assert_array_equal(got, want)


def test_export_is_a_vector_the_conformance_runner_accepts(tmp_path, rng):
    prog, a, w, want = _conv(*CONVS["3x3 s2 p1, h threads"], rng)
    got = np.zeros(want.shape, np.int8)
    with Runtime("sim") as rt:
        prog.run(a, w, got, runtime=rt, export_to=tmp_path / "vec")
    vector = load_vector(tmp_path / "vec")
    run = run_vector(vector)
    assert run.error is None
    np.testing.assert_array_equal(run.mem, vector.mem_out)
    assert run.result.counters == json.loads((tmp_path / "vec" / "stats.json").read_text())


def test_tokens_pair_up_per_queue_and_only_between_neighbours(rng):
    prog, *_ = _conv(*CONVS["3x3 s1 p1 row tiles"], rng)
    pushes: dict[tuple[int, int], int] = {}
    pops: dict[tuple[int, int], int] = {}
    for op in prog.ops:
        for to in op.pushes:
            pushes[op.module, to] = pushes.get((op.module, to), 0) + 1
        for frm in op.pops:
            pops[frm, op.module] = pops.get((frm, op.module), 0) + 1
    assert pushes == pops
    # several output tiles reuse the accumulator, so every one of the four queues carries tokens
    assert set(pushes) == {(LOAD, COMPUTE), (COMPUTE, LOAD), (COMPUTE, STORE), (STORE, COMPUTE)}


def test_padded_input_tile_is_one_load_with_pads_and_weights_fold_to_2d(rng):
    prog, *_ = _conv((14, 14, 2, 4, 3, 1, 1), ([1, 14], [1, 14], [2, 1], [1, 4], 1, 1), rng)
    inp = [op for op in prog.ops if isinstance(op, LoadOp) and op.module == LOAD and op.memory_type == 2]
    wgt = [op for op in prog.ops if isinstance(op, LoadOp) and op.memory_type == 1]
    # one input block per reduction step: the 14x14 image with a one-entry zero border around it
    assert [(op.y_size, op.x_size, op.x_stride, op.pads) for op in inp] == [(14, 14, 14, (1, 1, 1, 1))] * 2
    # 4 output blocks x 1 input block x 3x3: rows of 9 weight blocks, 2 * 9 apart in DRAM
    assert [(op.y_size, op.x_size, op.x_stride) for op in wgt] == [(4, 9, 18)] * 2
    stores = [op for op in prog.ops if isinstance(op, StoreOp)]
    assert [(op.y_size, op.x_size) for op in stores] == [(1, 4 * 14 * 14)]


def test_kernels_use_at_most_two_hardware_loops_and_fold_the_conv_window(rng):
    prog, *_ = _conv(*CONVS["3x3 s1 p1, oc threads"], rng)
    kernels = [op for op in prog.ops if isinstance(op, KernelOp)]
    assert all(len(op.loops) <= 2 for op in kernels)
    gemm = next(op for op in kernels if op.gemm and not op.reset)
    # the inner input-block loop (2) and j (14) fold into the instruction; dj, di, c, i unroll
    assert [lp[0] for lp in gemm.loops] == [2, 14] and len(gemm.uops) == 3 * 3 * 2 * 14
    alu = [op for op in kernels if not op.gemm]
    assert [(op.opcode, op.use_imm, op.imm) for op in alu[:3]] == [(3, True, 4), (1, True, 0), (0, True, 127)]


def test_virtual_threads_overlap_load_and_compute(rng):
    serial, *_ = _conv((14, 14, 4, 4, 3, 1, 1), ([1, 14], [1, 14], [4, 1], [2, 2], 1, 1), rng)
    threaded, a, w, want = _conv((14, 14, 4, 4, 3, 1, 1), ([1, 14], [1, 14], [4, 1], [2, 2], 2, 1), rng)
    timings = []
    for prog in (serial, threaded):
        got = np.zeros(want.shape, np.int8)
        with Runtime("sim") as rt:
            prog.run(a, w, got, runtime=rt)
            timings.append(rt.last_timing())
        np.testing.assert_array_equal(got, want)
    assert timings[1].cycles < 0.9 * timings[0].cycles
    loads = [iv for iv in timings[1].intervals if iv.track == "load"]
    gemms = [iv for iv in timings[1].intervals if iv.track == "compute" and "GEMM" in iv.label]
    overlap = sum(max(0, min(g.end, ld.end) - max(g.start, ld.start)) for g in gemms for ld in loads)
    assert overlap > 0


def test_dumps_show_the_loop_nest_operations_and_instructions(rng):
    s, data, weight, out = _dense_schedule(1, 2, 1)
    prog = build(s, [data, weight, out], "dense")
    text = str(prog)
    assert text.startswith("func dense(") and "// 8 VTA operations" in text
    assert "GEMM reset" in text and "STORE sram[0] -> arg2[0] 1x1 stride 1 pop<compute" in text
    listing = prog.disassemble()
    assert "FINISH" in listing and "GEMM" in listing and "LOAD" in listing


def test_run_refuses_wrong_arguments(rng):
    s, data, weight, out = _dense_schedule(1, 1, 1)
    prog = build(s, [data, weight, out], "dense")
    a = np.zeros(data.shape, np.int8)
    with pytest.raises(BackendError, match=r"^program dense takes 3 arguments \(A, W, out\), got 2$"):
        prog.run(a, a)
    with pytest.raises(BackendError, match=r"^program dense: argument 1 \(W\) must be int8\[1, 1, 16, 16\], "
                                           r"got int32\[1, 1, 16, 16\]$"):
        prog.run(a, np.zeros(weight.shape, np.int32), np.zeros(out.shape, np.int8))


def test_a_copy_loop_order_dma_cannot_express_is_refused_at_build_time():
    from vta.compiler import te
    from vta.compiler.schedule import create_schedule
    from vta.errors import LoweringError

    x = te.placeholder((1, 4, 8, 8, 1, 16), "int32", "x")
    a = te.compute(x.shape, lambda *i: x[i], "a")
    b = te.compute(x.shape, lambda *i: a[i] >> 1, "b")
    out = te.compute(x.shape, lambda *i: b[i].astype("int8"), "out")
    s = create_schedule(out)
    s[a].set_scope("local.acc_buffer")
    s[b].set_scope("local.acc_buffer")
    n, c, h, w, bi, ci = s[a].op.axis
    s[a].reorder(n, h, c, w, bi, ci)  # channel blocks inside rows: the SRAM side is no longer in order
    s[a].pragma(n, "dma_copy")
    s[b].pragma(s[b].op.axis[0], "alu")
    s[out].pragma(s[out].op.axis[0], "dma_copy")
    with pytest.raises(LoweringError, match=r"^dma_copy into a: the SRAM side is not one contiguous run of entries "
                                            r"in loop order \(loop i1 steps 64 entries, expected 8\)$"):
        build(s, [x, out], "t")


def test_a_program_longer_than_the_instruction_buffer_runs_in_several_flushes(rng):
    prog, a, w, want = _conv(*CONVS["3x3 s1 p1 row tiles"], rng)
    got = np.zeros(want.shape, np.int8)
    with Runtime("sim", insn_capacity=24) as rt:
        info = prog.run(a, w, got, runtime=rt)
        assert info.runs > 2 and rt.stats.auto_flushes == info.runs - 1
    np.testing.assert_array_equal(got, want)


def test_a_reduction_inside_one_output_entry_is_split_so_the_board_cannot_lose_updates(rng, tmp_path):
    from vta.compiler.ops.dense import DenseConfig
    from vta.sim.lint import lint_vector

    # one output block, all four input blocks in one tile: a single kernel would accumulate into the
    # same entry on consecutive micro-ops, which the HLS GEMM pipeline does not guard (spec §3.3)
    op = dense(1, 64, 16, config=DenseConfig(tile_b=[1, 1], tile_co=[1, 1], tile_ci=[1, 4]))
    prog = build(op.schedule, op.args, "dense")
    gemms = [k for k in prog.ops if isinstance(k, KernelOp) and k.gemm and not k.reset]
    assert [(k.loops, len(k.uops)) for k in gemms] == [((), 1)] * 4
    inputs = op.random_inputs(rng)
    out = op.empty_output()
    with Runtime("sim") as rt:
        prog.run(*inputs, out, runtime=rt, export_to=tmp_path / "vec")
    np.testing.assert_array_equal(out, op.reference(*inputs))
    assert lint_vector(load_vector(tmp_path / "vec")).result.divergences == ()


def test_run_takes_device_buffers_as_they_are(rng):
    s, data, weight, out = _dense_schedule(1, 2, 1)
    prog = build(s, [data, weight, out], "dense")
    a = rng.integers(-128, 128, data.shape).astype(np.int8)
    w = rng.integers(-128, 128, weight.shape).astype(np.int8)
    with Runtime("sim") as rt:
        bufs = [rt.alloc(x.nbytes) for x in (a, w)] + [rt.alloc(16)]
        bufs[0].copy_from(a)
        bufs[1].copy_from(w)
        prog.run(*bufs, runtime=rt)
        got = bufs[2].copy_to(np.zeros(out.shape, np.int8))
        with pytest.raises(BackendError, match=r"^program dense: argument 1 \(W\) needs 512 bytes, the device "
                                               r"buffer has 16$"):
            prog.run(bufs[0], bufs[2], bufs[2], runtime=rt)
    np.testing.assert_array_equal(got, reference.dense(a, w).astype(np.int8))


def test_an_update_reading_its_operand_at_other_entries_does_not_overwrite_it_in_place(rng):
    from vta.compiler import te
    from vta.compiler.schedule import create_schedule

    x = te.placeholder((1, 4, 1, 16), "int32", "x")
    a = te.compute(x.shape, lambda *i: x[i], "a")
    b = te.compute((1, 3, 1, 16), lambda n, c, bi, k: a[n, c, bi, k] + a[n, c + 1, bi, k], "b")  # a neighbour sum
    out = te.compute(b.shape, lambda *i: b[i].astype("int8"), "out")
    s = create_schedule(out)
    for t, pragma in ((a, "dma_copy"), (b, "alu")):
        s[t].set_scope("local.acc_buffer")
        s[t].pragma(s[t].op.axis[0], pragma)
    s[out].pragma(s[out].op.axis[0], "dma_copy")
    prog = build(s, [x, out], "pairs")
    assert "GEMM reset" in str(prog)  # b gets its own tile: a copy of a, then the ADD
    data = rng.integers(-60, 60, x.shape).astype(np.int32)
    got = np.zeros(out.shape, np.int8)
    with Runtime("sim") as rt:
        prog.run(data, got, runtime=rt)
    np.testing.assert_array_equal(got, (data[:, :3] + data[:, 1:]).astype(np.int8))
