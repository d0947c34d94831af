"""Shared fixtures: the golden-vector directory and a fresh simulated device; the ``board`` marker.

The golden vectors are part of the contract, so a run without them fails (it does not skip):
they are found at ``$VTA_VECTORS`` if set, else at ``shared/vectors`` in the nearest folder
above the checkout that has one (CI places ``shared/`` beside the checkout).

Tests marked ``board`` need a real Pynq board: they are skipped unless ``VTA_BOARD=1`` (CI
deselects them with ``-m 'not board'``; on a board run ``VTA_BOARD=1 pytest -m board``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vta.config import get_env
from vta.sim.device import SimDevice


def find_vectors() -> tuple[Path, str]:
    """(where the golden vectors are, or are expected; how that place was chosen)."""
    if os.environ.get("VTA_VECTORS"):
        return Path(os.environ["VTA_VECTORS"]), "VTA_VECTORS"
    checkout = Path(__file__).resolve().parents[1]
    for folder in checkout.parents:
        if (folder / "shared" / "vectors" / "index.json").exists():
            return folder / "shared" / "vectors", f"shared/vectors above the checkout {checkout}"
    return checkout.parent / "shared" / "vectors", f"shared/vectors beside the checkout {checkout}"


VECTORS, VECTORS_CHOSEN_BY = find_vectors()
MISSING_VECTORS = (f"golden vectors not found: expected {VECTORS}/index.json ({VECTORS_CHOSEN_BY}); place the "
                   "shared/ folder beside the checkout or set VTA_VECTORS to the vectors folder")


def pytest_report_header(config) -> str:
    found = (VECTORS / "index.json").exists()
    return f"golden vectors: {VECTORS} ({VECTORS_CHOSEN_BY})" + ("" if found else " -- MISSING")


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
        pytest.fail(MISSING_VECTORS, pytrace=False)
    return VECTORS
