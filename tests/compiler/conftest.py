"""Fixtures shared by the compiler tests; the operator builders live in vta.compiler.ops."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(7)
