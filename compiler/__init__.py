"""vta.compiler: tensor expressions, schedules and their lowering to VTA loop nests."""

from vta.compiler import ops, te
from vta.compiler.intrin import gemm_intrin
from vta.compiler.lower.pipeline import lower
from vta.compiler.schedule import Schedule, Stage, create_schedule

__all__ = ["Schedule", "Stage", "create_schedule", "gemm_intrin", "lower", "ops", "te"]
