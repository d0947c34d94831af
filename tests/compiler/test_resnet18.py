"""All ten ResNet-18 conv layers (spec §7.3) compile with the tuned and the default knobs, run
bit-exact on the simulator, export as vectors the conformance runner accepts, and lint clean
for the Pynq bitstream (so the compiled streams avoid every construct of spec §3.11)."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.build import build
from vta.compiler.ops import Epilogue, conv2d, default_conv2d_config
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.runtime import Runtime
from vta.sim.lint import lint_vector
from vta.sim.vector import load_vector, run_vector


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "default"])
@pytest.mark.parametrize("name", list(RESNET18))
def test_layer_runs_bit_exact_and_exports_a_clean_vector(name, tuned, tmp_path):
    wl = RESNET18[name]
    op = conv2d(wl, TUNED[name] if tuned else default_conv2d_config(wl), Epilogue(shift=11, relu=True, clip=(0, 127)))
    prog = build(op.schedule, op.args, name)
    inputs = op.random_inputs(np.random.default_rng(len(name)))
    out = op.empty_output()
    with Runtime("sim") as rt:
        prog.run(*inputs, out, runtime=rt, export_to=tmp_path / name)
        timing = rt.last_timing()
    np.testing.assert_array_equal(out, op.reference(*inputs))
    assert timing.macs == wl.ops // 2
    vector = load_vector(tmp_path / name)
    run = run_vector(vector)
    assert run.error is None
    np.testing.assert_array_equal(run.mem, vector.mem_out)
    linted = lint_vector(vector)
    assert linted.error is None and linted.result.divergences == ()
