"""The ``board`` marker (tests/conftest.py): skipped with a reason off the board, run with VTA_BOARD=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ONE = "tests/board/test_on_board.py::test_board_is_detected_without_configuration"


def _pytest(env_board: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VTA_BOARD", "VTA_TARGET", "VTA_CONFIG", "BOARD")}
    if env_board is not None:
        env["VTA_BOARD"] = env_board
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-m", "board", "-p", "no:cacheprovider", ONE],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(os.environ.get("VTA_BOARD") == "1", reason="checks the marker off the board")
def test_board_tests_skip_off_the_board_and_run_with_vta_board():
    off = _pytest(None)
    assert "1 skipped" in off.stdout and "needs a real Pynq board: run on the board with VTA_BOARD=1 pytest -m " \
        "board" in off.stdout, off.stdout
    on = _pytest("1")  # runs: here, with no board, it fails saying so
    assert "1 error" in on.stdout and "VTA_BOARD=1 but TARGET is 'sim'" in on.stdout, on.stdout
