"""Shared fixtures: the golden-vector directory and a fresh simulated device."""

from __future__ import annotations

from pathlib import Path

import pytest

from vta.config import get_env
from vta.sim.device import SimDevice

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


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
