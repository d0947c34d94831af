"""The real-board suite: detection, selftest, golden vectors, a compiled layer, timeout and recovery.

Skipped unless VTA_BOARD=1 (tests/conftest.py); see tests/board/conftest.py for how to run it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.board.relocate import insn_region, relocated_image
from tests.compiler.test_build import CONVS, _conv
from tests.driver.test_vectors import POSITIVE
from vta.cli import main
from vta.config import target_choice
from vta.errors import DeviceTimeout
from vta.sim.vector import load_vector

pytestmark = pytest.mark.board


def test_board_is_detected_without_configuration(board_env):
    choice = target_choice()
    assert choice.target == board_env.TARGET
    assert choice.source in ("detected", "VTA_TARGET", "VTA_CONFIG"), choice.reason


def test_selftest_programs_and_passes(capsys):
    assert main(["selftest", "--repeat", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["results"] and all(r["ok"] for r in out["results"])


def _run_relocated(rt, vector) -> np.ndarray:
    buf = rt.alloc(len(vector.mem_in))
    try:
        buf.copy_from(relocated_image(vector, buf.phys_addr, rt.env))
        rt.launch(buf, int(vector.meta["insn_offset"]), vector.insn_count)
        return buf.copy_to()
    finally:
        rt.free(buf)


@pytest.mark.parametrize("path", POSITIVE, ids=POSITIVE)
def test_golden_vector(board_runtime, vectors_dir, path):
    vector = load_vector(vectors_dir / path)
    got = _run_relocated(board_runtime, vector)
    keep = np.ones(len(got), bool)
    keep[insn_region(vector)] = False
    assert np.array_equal(got[keep], vector.mem_out[keep]), f"{path}: image differs"


@pytest.mark.parametrize("name", list(CONVS))
def test_compiled_conv2d_layer(board_runtime, name):
    prog, a, w, want = _conv(*CONVS[name], np.random.default_rng(7))
    got = np.zeros(want.shape, np.int8)
    prog.run(a, w, got, runtime=board_runtime)
    np.testing.assert_array_equal(got, want)


def test_timeout_recovers_and_keeps_buffers(board_runtime, vectors_dir):
    """A stream the hardware cannot finish (it deadlocks on tokens) times out; recovery re-programs the FPGA
    with every buffer freed and restored (the runtime's own too); the next runs are correct."""
    dev, env = board_runtime.backend.device, board_runtime.env
    neg = load_vector(vectors_dir / "negative/neg_deadlock_0")
    kept, stuck = dev.alloc(4096), dev.alloc(len(neg.mem_in))
    try:
        kept.array[:] = np.arange(4096) % 251
        kept.flush()
        stuck.array[:] = relocated_image(neg, stuck.phys_addr, env)
        stuck.flush()
        before = dev.recoveries
        with pytest.raises(DeviceTimeout, match=r"did not finish within 0\.5 s: .*\. Recovered: .*; the next run "
                           r"starts on a clean device$"):
            dev.run(stuck.phys_addr + int(neg.meta["insn_offset"]), neg.insn_count, timeout_s=0.5)
        assert dev.recoveries == before + 1
        kept.invalidate()
        assert np.array_equal(kept.array, np.arange(4096) % 251)
    finally:
        kept.free()
        stuck.free()
    test_golden_vector(board_runtime, vectors_dir, POSITIVE[0])
    test_compiled_conv2d_layer(board_runtime, next(iter(CONVS)))
