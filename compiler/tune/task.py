"""A tuning task: one operator workload with its template space, how to build a configuration, and its epilogue.

The task fixes what is measured (the layer and its fused requantize epilogue), the space fixes
what may vary (the template's knobs). ``build`` compiles one configuration; the measurers run it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vta.compiler.build import build
from vta.compiler.ops import Epilogue, conv2d, dense
from vta.compiler.ops.common import ScheduledOp
from vta.compiler.ops.conv2d_config import Conv2dWorkload
from vta.compiler.ops.resnet18 import RESNET18
from vta.compiler.program import Program
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.space import Conv2dSpace, DenseSpace, DenseWorkload, Space
from vta.config import get_env

__all__ = ["Task", "conv2d_task", "dense_task", "layer_tasks"]

_INT8_PRODUCT_STD = 128 * 128 / 3


def requant_epilogue(reduction: int) -> Epilogue:
    """The demo's shift / relu / clip, with a shift that keeps random accumulators near int8 range."""
    std = math.sqrt(reduction) * _INT8_PRODUCT_STD
    return Epilogue(shift=max(0, min(15, round(math.log2(std)) - 6)), relu=True, clip=(0, 127))


@dataclass(frozen=True, eq=False)
class Task:
    """One workload to tune: its space, its fused epilogue, and the operations it performs (for GOPS)."""

    space: Space
    epilogue: Epilogue

    @property
    def name(self) -> str:
        return self.space.name

    @property
    def ops(self) -> int:
        wl = self.space.workload
        if isinstance(wl, Conv2dWorkload):
            return wl.ops
        env = get_env()
        return 2 * wl.batch_blocks * env.BATCH * wl.out_blocks * env.BLOCK_OUT * wl.in_blocks * env.BLOCK_IN

    def operator(self, index: int) -> ScheduledOp:
        """The scheduled operator of configuration ``index``."""
        wl, cfg = self.space.workload, self.space.config(index)
        if isinstance(wl, Conv2dWorkload):
            return conv2d(wl, cfg, self.epilogue)  # type: ignore[arg-type]
        env = get_env()
        return dense(wl.batch_blocks * env.BATCH, wl.in_blocks * env.BLOCK_IN, wl.out_blocks * env.BLOCK_OUT,
                     cfg, self.epilogue)  # type: ignore[arg-type]

    def build(self, index: int) -> tuple[ScheduledOp, Program]:
        """Compile configuration ``index``: the operator (with its numpy reference) and its program."""
        op = self.operator(index)
        return op, build(op.schedule, op.args, self.name)


def conv2d_task(workload: Conv2dWorkload) -> Task:
    """A conv2d layer with the demo's requantize epilogue."""
    return Task(Conv2dSpace(workload), requant_epilogue(workload.in_channels * workload.kernel ** 2))


def dense_task(name: str, batch_blocks: int, out_blocks: int, in_blocks: int) -> Task:
    """A dense layer (sizes in blocks) with the requantize epilogue."""
    env = get_env()
    return Task(DenseSpace(DenseWorkload(name, batch_blocks, out_blocks, in_blocks)),
                requant_epilogue(in_blocks * env.BLOCK_IN))


def layer_tasks(names: list[str]) -> list[Task]:
    """ResNet-18 layers by name (``C2``..``C11``)."""
    unknown = [n for n in names if n not in RESNET18]
    if unknown:
        raise TuneError(f"ResNet-18 has no VTA layer {unknown[0]!r}; layers: {', '.join(RESNET18)}")
    return [conv2d_task(RESNET18[n]) for n in names]
