"""The auto-tuner: knob spaces with a static validity filter, AutoTVM log I/O, measurers, cost models, search."""

from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.space import CONV2D_TASK, DENSE_TASK, Conv2dSpace, DenseSpace, DenseWorkload, Knob, Space

__all__ = ["CONV2D_TASK", "DENSE_TASK", "Conv2dSpace", "DenseSpace", "DenseWorkload", "Knob", "Space", "TuneError"]
