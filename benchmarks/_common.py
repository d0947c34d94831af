"""What the benchmark scripts share: best-of-N wall time, and the software and machine a result came from."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import numpy as np


def best(fn: Callable[[], object], repeat: int) -> float:
    """The shortest of ``repeat`` wall times of ``fn()``, in seconds (the least disturbed run)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def platform_info() -> dict[str, str]:
    """Python, numpy and machine of this run, recorded beside every result."""
    return {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
