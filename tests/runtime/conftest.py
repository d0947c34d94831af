"""Runtime fixtures: a simulator runtime, a seeded generator, and a recorder of launched streams."""

from __future__ import annotations

import numpy as np
import pytest

from vta.isa import decode_insn
from vta.runtime import Runtime


@pytest.fixture
def rt():
    runtime = Runtime("sim")
    yield runtime
    runtime.close()


@pytest.fixture
def rng():
    return np.random.default_rng(7)


class Launches:
    """Every stream the backend was asked to run, decoded (wraps ``backend.run``)."""

    def __init__(self, rt: Runtime):
        self.streams: list[list] = []
        run = rt.backend.run

        def spy(insn_phys, insn_count, timeout_s):
            raw = rt.backend.view(rt._insn_buf._handle)[:insn_count * 16].tobytes()
            self.streams.append([decode_insn(raw[i:i + 16], rt.env) for i in range(0, len(raw), 16)])
            return run(insn_phys, insn_count, timeout_s)

        rt.backend.run = spy

    @property
    def last(self) -> list:
        return self.streams[-1]


@pytest.fixture
def launches(rt):
    return Launches(rt)
