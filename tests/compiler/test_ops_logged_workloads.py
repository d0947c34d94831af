"""Grouped conv2d and conv2d_transpose: bit-exact with small shapes, and every such workload of the board
log with its logged knobs bit-exact on the simulator and lint clean for the Pynq bitstream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.compiler.conftest import check_bit_exact
from vta.compiler.build import build
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, Epilogue, conv2d, default_conv2d_config
from vta.compiler.ops.conv2d_transpose import (
    Conv2dTransposeWorkload,
    conv2d_transpose,
    conv2d_transpose_reference,
    dilate,
)
from vta.compiler.ops.logged import build_line, read_lines
from vta.errors import ScheduleError
from vta.runtime import Runtime
from vta.sim.lint import lint_vector
from vta.sim.vector import load_vector

BOARD_TIMES = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration" / "pynq_board_times.jsonl"
EP = Epilogue(shift=8, clip=(0, 127))


@pytest.mark.parametrize(("wl", "cfg"), [
    (Conv2dWorkload("g2", 8, 8, 32, 32, 3, 1, 1, groups=2),
     Conv2dConfig(tile_h=[2, 4], tile_w=[1, 8], tile_ci=[1, 1], tile_co=[2, 1], oc_nthread=2)),
    (Conv2dWorkload("g4_s2", 8, 8, 64, 64, 3, 2, 1, groups=4),
     Conv2dConfig(tile_h=[1, 4], tile_w=[1, 4], tile_ci=[1, 1], tile_co=[4, 1], oc_nthread=2)),
    (Conv2dWorkload("g4_co4", 6, 6, 64, 64, 3, 1, 1, groups=4),
     Conv2dConfig(tile_h=[2, 3], tile_w=[1, 6], tile_ci=[1, 1], tile_co=[1, 4], h_nthread=2)),
    (Conv2dWorkload("g2_ci2", 5, 5, 64, 32, 3, 1, 1, groups=2), None),
])
def test_grouped_conv2d_is_bit_exact(rng, wl, cfg):
    check_bit_exact(conv2d(wl, cfg, EP), rng)


def test_grouped_reference_is_per_group_conv2d(rng):
    """Output block g depends only on input blocks of group g: zeroing group 1's input changes only block 1."""
    op = conv2d(Conv2dWorkload("g", 4, 4, 32, 32, 3, 1, 1, groups=2))
    d, k = op.random_inputs(rng)
    d0 = d.copy()
    d0[:, 1] = 0
    a, b = op.reference(d, k), op.reference(d0, k)
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    assert not np.array_equal(a[:, 1], b[:, 1])


def test_grouped_conv2d_refuses_groups_it_cannot_tile():
    with pytest.raises(ScheduleError, match="one output channel block per group"):
        default_conv2d_config(Conv2dWorkload("g", 8, 8, 64, 64, 3, 1, 1, groups=2))
    with pytest.raises(ScheduleError, match="groups"):
        Conv2dWorkload("g", 8, 8, 48, 48, 3, 1, 1, groups=2).blocks()


def _naive_transpose(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Textbook conv2d_transpose (NCHW, int64) with the kernel flipped, as TVM's layout stores it."""
    n, _, h, wd = x.shape
    o, _, k, _ = w.shape
    big = np.zeros((n, o, (h - 1) * stride + k, (wd - 1) * stride + k), np.int64)
    for i in range(h):
        for j in range(wd):
            big[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
                "nc,ocyx->noyx", x[:, :, i, j], w[:, :, ::-1, ::-1])
    return big[:, :, pad:big.shape[2] - pad, pad:big.shape[3] - pad]


def test_transpose_reference_matches_the_textbook_formula(rng):
    from vta.compiler.layout import pack_nchw, pack_oihw, unpack_nchw

    x = rng.integers(-128, 128, (1, 16, 3, 4)).astype(np.int8)
    w = rng.integers(-128, 128, (32, 16, 4, 4)).astype(np.int8)
    got = unpack_nchw(conv2d_transpose_reference(pack_nchw(x), pack_oihw(w), 2, 1))
    want = _naive_transpose(x.astype(np.int64), w.astype(np.int64), 2, 1)
    np.testing.assert_array_equal(got, want.astype(np.int32))


@pytest.mark.parametrize(("wl", "cfg"), [
    (Conv2dTransposeWorkload("t4s2", 4, 4, 32, 32, 4, 2, 1),
     Conv2dConfig(tile_h=[1, 8], tile_w=[1, 8], tile_ci=[2, 1], tile_co=[2, 1], oc_nthread=2)),
    (Conv2dTransposeWorkload("t3s2p0", 3, 5, 16, 32, 3, 2, 0), None),
])
def test_conv2d_transpose_runs_bit_exact_on_the_simulator(rng, wl, cfg):
    op = conv2d_transpose(wl, cfg, EP)
    prog = build(op.schedule, op.args, wl.name)
    d = dilate(rng.integers(-128, 128, (1, wl.in_channels // 16, wl.h, wl.w, 1, 16)).astype(np.int8), wl.stride)
    k = rng.integers(-128, 128, op.args[1].shape).astype(np.int8)
    out = op.empty_output()
    with Runtime("sim") as rt:
        prog.run(d, k, out, runtime=rt)
    assert out.shape[2:4] == (wl.out_h, wl.out_w)
    np.testing.assert_array_equal(out, op.reference(d, k))


def _logged(task: str) -> list:
    return [ln for _, ln in read_lines(BOARD_TIMES) if ln.task == task]


# Lines whose functional run takes more than a few seconds on the simulator.
_LARGE = {31, 32, 33, 34, 36}


@pytest.mark.parametrize("ln", [pytest.param(ln, id=f"line{ln.line}", marks=[pytest.mark.slow] if ln.line in _LARGE
                                             else []) for ln in _logged("group_conv2d_packed.vta")
                                + _logged("conv2d_transpose_packed.vta")])
def test_logged_workload_runs_bit_exact_and_lint_clean(ln, tmp_path):
    env, op = build_line(ln)
    rng = np.random.default_rng(ln.line)
    with env:
        prog = build(op.schedule, op.args, op.name, env=env)
        d, k = op.random_inputs(rng)
        if ln.task == "conv2d_transpose_packed.vta":
            d = dilate(d[:, :, ::ln.strides[0], ::ln.strides[1]], ln.strides[0])
        out = op.empty_output()
        with Runtime("sim", env=env) as rt:
            prog.run(d, k, out, runtime=rt, export_to=tmp_path / "vec")
        np.testing.assert_array_equal(out, op.reference(d, k))
        linted = lint_vector(load_vector(tmp_path / "vec"))
    assert linted.error is None and linted.result.divergences == ()


def test_grouped_and_transposed_run_bit_exact_on_the_emulated_board(board, env, rng):
    from vta.runtime.backends.board import BoardBackend

    grouped = conv2d(Conv2dWorkload("g4", 8, 8, 64, 64, 3, 2, 1, groups=4),
                     Conv2dConfig(tile_h=[1, 4], tile_w=[1, 4], tile_ci=[1, 1], tile_co=[4, 1], oc_nthread=2), EP)
    wl = Conv2dTransposeWorkload("t", 4, 4, 32, 32, 4, 2, 1)
    transposed = conv2d_transpose(wl, None, EP)
    d, k = grouped.random_inputs(rng)
    td = dilate(rng.integers(-128, 128, (1, 2, 4, 4, 1, 16)).astype(np.int8), 2)
    tk = rng.integers(-128, 128, transposed.args[1].shape).astype(np.int8)
    with Runtime(BoardBackend(env, emulator=board, timeout_s=5.0), env=env) as rt:
        for op, inputs in ((grouped, (d, k)), (transposed, (td, tk))):
            out = op.empty_output()
            build(op.schedule, op.args, op.name).run(*inputs, out, runtime=rt)
            np.testing.assert_array_equal(out, op.reference(*inputs))
