"""A synchronized program exported as a vector directory runs to the same image in ``vta sim run-vector``."""

from __future__ import annotations

import json

import numpy as np

from tests.runtime import programs
from vta.cli import main
from vta.sim.vector import load_vector, run_vector


def test_export_conv_tile_round_trips(rt, rng, tmp_path, capsys):
    out, want = programs.vector_alu(rt, rng, sync=False)
    rt.queue.synchronize(export_to=tmp_path / "vec")
    assert np.array_equal(out.view(np.int8, want.shape), want)
    vec = load_vector(tmp_path / "vec")
    assert vec.meta["phys_base"] == 0x1000 and set(vec.meta["regions"]) == {"uops", "buf_1", "buf_2", "buf_3",
                                                                              "insns"}
    run = run_vector(vec)
    assert run.error is None
    assert np.array_equal(run.mem, vec.mem_out)
    assert run.result.counters == vec.stats == rt.backend.counters()
    assert main(["sim", "run-vector", str(tmp_path / "vec"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
