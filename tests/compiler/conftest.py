"""Fixtures shared by the compiler tests; the operator builders live in vta.compiler.ops."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def check_bit_exact(op, rng, inputs=None):
    """Lower a ScheduledOp (IR checked between passes), interpret it and compare with its reference."""
    from vta.compiler import lower
    from vta.compiler.interp import run

    func = lower(op.schedule, op.args, debug=True)
    inputs = op.random_inputs(rng) if inputs is None else inputs
    got = op.empty_output()
    run(func, *inputs, got)
    np.testing.assert_array_equal(got, op.reference(*inputs))
    return func


def check_compiled_bit_exact(op, rng, inputs=None, runs=1, like_tvm=False):
    """Build a ScheduledOp to a VTA program (TVM's program with ``like_tvm``) and run it on the simulator
    ``runs`` times in one runtime, each with fresh random inputs (or ``inputs`` for the first), comparing
    every output with its reference. Returns the program."""
    from vta.compiler.build import build
    from vta.runtime import Runtime

    prog = build(op.schedule, op.args, op.name, like_tvm=like_tvm)
    with Runtime("sim") as rt:
        for run in range(runs):
            args = op.random_inputs(rng) if inputs is None or run else inputs
            got = op.empty_output()
            prog.run(*args, got, runtime=rt)
            np.testing.assert_array_equal(got, op.reference(*args), err_msg=f"{op.name}, run {run + 1} of {runs}")
    return prog
