"""Shared fixtures: the golden-vector directory and a fresh simulated device; the ``board`` marker.

Tests marked ``board`` need a real Pynq board: they are skipped unless ``VTA_BOARD=1`` (CI
deselects them with ``-m 'not board'``; on a board run ``VTA_BOARD=1 pytest -m board``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vta.config import get_env
from vta.sim.device import SimDevice

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("VTA_BOARD") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real Pynq board: run on the board with VTA_BOARD=1 pytest -m board")
    for item in items:
        if item.get_closest_marker("board") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _private_device_lock(tmp_path_factory):
    """A private default device lock per test run (off the board), so parallel runs never see each other as owners."""
    if os.environ.get("VTA_BOARD") == "1":
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("vta.driver.lock.DEFAULT_LOCK_PATH", str(tmp_path_factory.mktemp("lock") / "vta-pynq.lock"))
        yield


@pytest.fixture
def env():
    return get_env()


@pytest.fixture
def dev(env):
    return SimDevice(env)


@pytest.fixture(scope="session")
def board():
    """One emulated board process for the session (driver and emulator tests reset it as they need)."""
    from vta.driver.emulated import EmulatedBoard

    emu = EmulatedBoard.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    if not (VECTORS / "index.json").exists():
        pytest.skip(f"golden vectors not found at {VECTORS} (CI places shared/ beside the checkout)")
    return VECTORS
