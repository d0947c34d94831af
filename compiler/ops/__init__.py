"""Operators, each a compute plus a default schedule, bit-exact against :mod:`vta.compiler.reference`.

Every builder (``conv2d``, ``dense``, ``elementwise``, ``max_pool2d``) returns a
:class:`ScheduledOp` whose ``schedule`` and ``args`` go to ``lower``/``build`` and whose
``reference`` gives the expected output; the ``*_packed`` functions and ``schedule_*`` give
the compute and the schedule separately, TVM style.
"""

from vta.compiler.ops import resnet18
from vta.compiler.ops.alu import ALU_OPS, AluTensors, alu_packed, elementwise, schedule_alu_packed
from vta.compiler.ops.common import Epilogue, ScheduledOp
from vta.compiler.ops.conv2d import Conv2dTensors, conv2d, conv2d_packed, schedule_conv2d_packed
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload, default_conv2d_config
from vta.compiler.ops.dense import (
    DenseConfig,
    DenseTensors,
    default_dense_config,
    dense,
    dense_packed,
    schedule_dense_packed,
)
from vta.compiler.ops.pool import PoolTensors, max_pool2d, max_pool2d_packed, schedule_max_pool2d_packed

__all__ = [
    "ALU_OPS", "AluTensors", "Conv2dConfig", "Conv2dTensors", "Conv2dWorkload", "DenseConfig", "DenseTensors",
    "Epilogue", "PoolTensors", "ScheduledOp", "alu_packed", "conv2d", "conv2d_packed", "default_conv2d_config",
    "default_dense_config", "dense", "dense_packed", "elementwise", "max_pool2d", "max_pool2d_packed", "resnet18",
    "schedule_alu_packed", "schedule_conv2d_packed", "schedule_dense_packed", "schedule_max_pool2d_packed",
]
