"""Fixtures for the real-board suite: one runtime on the detected board, programmed when it opens.

Every test here is marked ``board`` and skipped unless ``VTA_BOARD=1`` (see tests/conftest.py).
Run on the board, with no VTA_* configuration (the board is detected) and as a user who may
open /dev/mem (root on a stock PYNQ image):
``sudo VTA_BOARD=1 /usr/local/share/pynq-venv/bin/python -m pytest -m board tests/board``.
"""

from __future__ import annotations

import pytest

from vta.config import get_env


@pytest.fixture(scope="module")
def board_env():
    env = get_env()
    if env.TARGET not in ("pynq", "ultra96", "zcu104"):
        pytest.fail(f"VTA_BOARD=1 but TARGET is {env.TARGET!r}: the board suite runs on a Pynq board")
    return env


@pytest.fixture(scope="module")
def board_runtime(board_env):
    """A Runtime on the board: the FPGA is programmed (cached release) before the runtime allocates."""
    from vta.runtime import Runtime

    rt = Runtime(env=board_env, timeout_s=5.0)
    yield rt
    rt.close()
