"""One small conv2d space measured once by the model, shared by the tuner's test modules."""

from __future__ import annotations

from functools import lru_cache

from vta.compiler.ops import Conv2dWorkload
from vta.compiler.tune.measure import MeasureResult, ModelMeasurer
from vta.compiler.tune.task import Task, conv2d_task

SMALL = Conv2dWorkload("small", 6, 6, 16, 32, 3, 1, 1)


@lru_cache(maxsize=1)
def small_measured() -> tuple[Task, ModelMeasurer, tuple[MeasureResult, ...]]:
    """SMALL's task, a model measurer holding its memo, and every filtered configuration measured."""
    task = conv2d_task(SMALL)
    measurer = ModelMeasurer()
    return task, measurer, tuple(measurer.measure(task, task.space.valid.tolist()))
