"""build: a schedule to a runnable VTA program (lowering, then code generation)."""

from __future__ import annotations

from collections.abc import Sequence

from vta.compiler.codegen import generate
from vta.compiler.expr import Tensor
from vta.compiler.lower.pipeline import lower
from vta.compiler.program import Program
from vta.compiler.schedule import Schedule
from vta.config import Environment, get_env

__all__ = ["build"]


def build(schedule: Schedule, args: Sequence[Tensor] | None = None, name: str = "main", *, debug: bool = False,
          env: Environment | None = None, like_tvm: bool = False) -> Program:
    """Compile ``schedule`` to a VTA program.

    Parameters
    ----------
    schedule : the scheduled computation (checked in full first).
    args : tensors that become the program's parameters, in order (default: inputs, then outputs).
    name : the program's name in dumps and errors.
    debug : check the IR between lowering passes.
    env : hardware configuration (default: the active one).
    like_tvm : emit the program TVM's VTA lowering builds for this schedule (its order of virtual
        threads, its dependency tokens, its GEMM folding) rather than this compiler's; the
        published board times measured those programs (``vta model predict``). Same results,
        usually slower: fewer overlaps, and no care for the GEMM pipeline's accumulator hazard.

    Returns
    -------
    Program
        ``run(*arrays)`` executes it; ``str()`` shows the loop nest and the operations.

    Raises
    ------
    ScheduleError
        The schedule breaks a hardware rule.
    LoweringError
        The loop nest cannot be expressed as VTA instructions (the message names the stage and why).

    Example
    -------
    >>> prog = build(s, [data, weight, out], "dense")        # doctest: +SKIP
    """
    env = env or get_env()
    func = lower(schedule, args, name, debug)
    return Program(name, func, tuple(generate(func, env, like_tvm=like_tvm)), env)
