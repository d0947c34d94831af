"""Walk a lowered loop nest and emit VTA operations in program order.

Loops that are not folded into a DMA or a micro-op kernel run on the host at compile time,
so the program is a flat instruction stream (the ISA has no loops). Virtual threads are
pushed inward to the innermost sequences of VTA operations and replicated there, one copy per
thread in turn: inside ``for k { load A; load B; gemm }`` thread 0's load-load-gemm is followed
by thread 1's, so thread 1's loads overlap thread 0's GEMM once tokens are placed (spec §7.4).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from vta.compiler.codegen.alu import AluTemplate
from vta.compiler.codegen.dma import DmaTemplate, perfect_nest
from vta.compiler.codegen.kernels import GemmTemplate
from vta.compiler.codegen.ops import VtaOp
from vta.compiler.codegen.sram import Placement
from vta.compiler.expr import IterVar
from vta.compiler.lower.ir import Allocate, Buffer, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store
from vta.config import Environment
from vta.errors import LoweringError

__all__ = ["emit_ops"]

Template = DmaTemplate | AluTemplate | GemmTemplate


def _is_gemm_nest(s: Stmt) -> bool:
    while isinstance(s, For) and s.kind == "serial":
        s = s.body
    return isinstance(s, Gemm)


def _is_leaf(s: Stmt) -> bool:
    """A statement that becomes VTA operations by itself (the coproc scopes of spec §7.4)."""
    if isinstance(s, Allocate):
        return _is_leaf(s.body)
    if isinstance(s, Seq):
        return all(_is_leaf(x) for x in s.stmts)
    return isinstance(s, Pragma) or _is_gemm_nest(s)


class _Emitter:
    def __init__(self, func: LoweredFunc, placements: Mapping[Buffer, Placement], env: Environment) -> None:
        self.func = func
        self.placements = placements
        self.env = env
        self.templates: dict[int, Template] = {}
        self.ops: list[VtaOp] = []

    def template(self, s: Stmt) -> Template:
        """The analysed form of a VTA statement, built on first use (statements repeat per loop iteration)."""
        t = self.templates.get(id(s))
        if t is None:
            if isinstance(s, Pragma) and s.key == "dma_copy":
                t = DmaTemplate(s, self.func.params, self.placements, self.env)
            elif isinstance(s, Pragma) and s.key == "alu":
                t = AluTemplate(s, self.placements)
            elif isinstance(s, Pragma):
                raise LoweringError(f"{self.func.name}: unknown pragma {s.key!r} (VTA knows dma_copy and alu)")
            else:
                loops, call = perfect_nest(s, "gemm")
                t = GemmTemplate(loops, call, self.placements)
            self.templates[id(s)] = t
        return t

    def leaves(self, s: Stmt, env: dict[IterVar, int]) -> None:
        if isinstance(s, Allocate):
            self.leaves(s.body, env)
        elif isinstance(s, Seq):
            for x in s.stmts:
                self.leaves(x, env)
        else:
            self.ops.extend(self.template(s).instantiate(env))

    def stmt(self, s: Stmt, env: dict[IterVar, int], threads: Sequence[tuple[IterVar, int]]) -> None:
        if _is_leaf(s):
            for combo in itertools.product(*(range(n) for _, n in threads)):
                self.leaves(s, {**env, **{v: i for (v, _), i in zip(threads, combo)}})
        elif isinstance(s, Seq):
            run: list[Stmt] = []
            for x in (*s.stmts, None):
                if x is not None and _is_leaf(x):
                    run.append(x)
                    continue
                if run:
                    self.stmt(Seq(tuple(run)), env, threads)
                    run = []
                if x is not None:
                    self.stmt(x, env, threads)
        elif isinstance(s, Allocate):
            self.stmt(s.body, env, threads)
        elif isinstance(s, For) and s.kind == "vthread":
            self.stmt(s.body, env, (*threads, (s.var, s.extent)))
        elif isinstance(s, For):
            for i in range(s.extent):
                self.stmt(s.body, {**env, s.var: i}, threads)
        elif isinstance(s, Store):
            raise LoweringError(f"{self.func.name}: {s.buffer.name}[...] = {s.value} has no dma_copy or alu pragma "
                                "and would have to run on the CPU; VTA programs compute every stage on the device")
        else:
            raise LoweringError(f"{self.func.name}: cannot generate code for {type(s).__name__}")


def emit_ops(func: LoweredFunc, placements: Mapping[Buffer, Placement], env: Environment) -> list[VtaOp]:
    """The VTA operations of ``func`` in program order (tokens not yet placed)."""
    em = _Emitter(func, placements, env)
    em.stmt(func.body, {}, ())
    return em.ops
