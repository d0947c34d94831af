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
