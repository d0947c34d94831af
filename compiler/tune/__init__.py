"""The auto-tuner: knob spaces with a static validity filter, AutoTVM log I/O, measurers, cost models, search."""

from vta.compiler.tune.autotvm_log import Record, read_log, task_of, write_log
from vta.compiler.tune.dispatch import apply_best
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.measure import BoardMeasurer, MeasureResult, ModelMeasurer, SimMeasurer, create_measurer
from vta.compiler.tune.space import CONV2D_TASK, DENSE_TASK, Conv2dSpace, DenseSpace, DenseWorkload, Knob, Space
from vta.compiler.tune.task import Task, conv2d_task, dense_task, layer_tasks
from vta.compiler.tune.tuner import TransferData, Tuner, TuneResult

__all__ = [
    "CONV2D_TASK", "DENSE_TASK", "BoardMeasurer", "Conv2dSpace", "DenseSpace", "DenseWorkload", "Knob",
    "MeasureResult", "ModelMeasurer", "Record", "SimMeasurer", "Space", "Task", "TransferData", "TuneError",
    "TuneResult", "Tuner", "apply_best", "conv2d_task", "create_measurer", "dense_task", "layer_tasks", "read_log",
    "task_of", "write_log",
]
