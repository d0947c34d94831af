"""An emulated board shared by the driver tests, and a device owning it per test."""

from __future__ import annotations

import pytest

from vta.driver.device import BoardDevice


@pytest.fixture
def expected_deviations():
    """Tests that provoke protocol deviations on purpose say how many by setting ``[0]``."""
    return [0]


@pytest.fixture
def device(board, expected_deviations):
    """A device on the shared emulator; the test must leave no unexpected protocol deviation behind."""
    before = board.deviations
    dev = BoardDevice.open_emulated(board, timeout_s=5.0)
    try:
        yield dev
    finally:
        dev.close()
    assert board.deviations - before == expected_deviations[0], f"protocol deviations: {board.events()}"
