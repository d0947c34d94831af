"""vta.compiler: tensor expressions, schedules, lowering and code generation to VTA programs."""

from vta.compiler import ops, te
from vta.compiler.build import build
from vta.compiler.intrin import gemm_intrin
from vta.compiler.lower.pipeline import lower
from vta.compiler.program import Program
from vta.compiler.schedule import Schedule, Stage, create_schedule

__all__ = ["Program", "Schedule", "Stage", "build", "create_schedule", "gemm_intrin", "lower", "ops", "te"]
