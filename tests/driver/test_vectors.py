"""Every positive golden vector through driver C code -> registers and file DRAM -> emulator -> simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import VECTORS
from tests.driver.programs import run_vector
from vta.sim.vector import load_vector


def _positive() -> list[str]:
    index = VECTORS / "index.json"
    if not index.exists():
        return []
    return [e["path"] for s, entries in json.loads(index.read_text()).items() if s != "negative" for e in entries]


POSITIVE = _positive()


@pytest.mark.parametrize("path", POSITIVE, ids=POSITIVE)
def test_positive_vector_identical_image(device, vectors_dir, path):
    vector = load_vector(vectors_dir / path)
    buf = run_vector(device, vector)
    diff = np.flatnonzero(buf.array != vector.mem_out)
    assert len(diff) == 0, f"{path}: {len(diff)} bytes differ, first at image offset {diff[0] if len(diff) else 0}"


def test_all_positive_vectors_listed(vectors_dir):
    assert len(POSITIVE) >= 70


@pytest.fixture(scope="module")
def board_runtime(board):
    from vta.runtime import Runtime
    from vta.runtime.backends.board import BoardBackend

    rt = Runtime(BoardBackend(emulator=board))
    yield rt
    rt.close()


@pytest.mark.parametrize("path", POSITIVE, ids=POSITIVE)
def test_positive_vector_through_the_runtime(board_runtime, vectors_dir, path):
    """runtime (verifier) -> BoardBackend -> C driver -> registers and file DRAM -> emulator -> simulator."""
    vector = load_vector(vectors_dir / path)
    buf = board_runtime.alloc_at(vector.phys_base, len(vector.mem_in))
    try:
        buf.copy_from(vector.mem_in)
        board_runtime.launch(buf, vector.meta["insn_offset"], vector.insn_count)
        assert np.array_equal(buf.copy_to(), vector.mem_out), f"{path}: image differs"
    finally:
        board_runtime.free(buf)
