"""Every golden vector in ../shared/vectors: identical image and counters, or the expected refusal."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import VECTORS
from vta.sim.vector import load_vector, run_vector


def _entries() -> list[tuple[str, str]]:
    index = VECTORS / "index.json"
    if not index.exists():
        return []
    return [(s, e["path"]) for s, entries in json.loads(index.read_text()).items() for e in entries]


ENTRIES = _entries()


@pytest.mark.parametrize("vset,path", ENTRIES, ids=[p for _, p in ENTRIES])
def test_vector(vectors_dir: Path, vset: str, path: str):
    vector = load_vector(vectors_dir / path)
    run = run_vector(vector)
    if vector.expect is not None:
        assert run.error is not None, f"{path}: ran, but the reference class is {vector.expect['class']}"
        assert run.error.error_class == vector.expect["class"], str(run.error)
        assert np.array_equal(run.mem, vector.mem_in), "a refused program changed memory"
    else:
        assert run.error is None, str(run.error)
        assert run.result.counters == vector.stats
        diff = np.flatnonzero(run.mem != vector.mem_out)
        assert len(diff) == 0, f"{len(diff)} bytes differ, first at image offset {diff[0] if len(diff) else 0}"


def test_index_covers_all_sets(vectors_dir: Path):
    sets = {s for s, _ in ENTRIES}
    assert {"random", "negative", "conv"} <= sets and len(ENTRIES) >= 98
