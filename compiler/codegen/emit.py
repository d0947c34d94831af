"""Walk a lowered loop nest and emit VTA operations in program order.

Loops that are not folded into a DMA or a micro-op kernel run on the host at compile time,
so the program is a flat instruction stream (the ISA has no loops). Virtual threads are
pushed inward to the innermost sequences of VTA operations and replicated there, one copy per
thread in turn: inside ``for k { load A; load B; gemm }`` thread 0's load-load-gemm is followed
by thread 1's, so thread 1's loads overlap thread 0's GEMM once tokens are placed (spec §7.4).

``like_tvm`` emits the program TVM's VTA lowering builds for the same schedule instead, which is
what the published board times measured: LiftAttrScope merges consecutive statements of one
module into a coproc scope and InjectVirtualThread replicates each scope per thread in turn
(``load A; load B`` of threads 0 and 1, then thread 0's GEMM, then thread 1's), GEMM loops fold
without regard for the accumulator pipeline, and the scopes are returned for TVM's tokens
(:func:`vta.compiler.codegen.deps.inject_scope_tokens`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from vta.compiler.codegen.alu import AluTemplate
from vta.compiler.codegen.dma import DmaTemplate, perfect_nest
from vta.compiler.codegen.kernels import GemmTemplate
from vta.compiler.codegen.ops import VtaOp
from vta.compiler.codegen.sram import Placement
from vta.compiler.expr import IterVar
from vta.compiler.lower.ir import Allocate, Buffer, For, Gemm, LoweredFunc, Pragma, Seq, Stmt, Store
from vta.config import Environment
from vta.errors import LoweringError

__all__ = ["Scope", "emit_ops"]


class Scope(NamedTuple):
    """One coproc scope of a TVM program: consecutive operations of one module, of one virtual thread
    (``thread``: its index per virtual-thread loop, ``()`` outside any)."""

    thread: tuple[int, ...]
    ops: tuple[VtaOp, ...]

Template = DmaTemplate | AluTemplate | GemmTemplate


def _is_gemm_nest(s: Stmt) -> bool:
    while isinstance(s, For) and s.kind == "serial":
        s = s.body
    return isinstance(s, Gemm)


def _atoms(s: Stmt) -> list[Stmt]:
    """The single VTA statements of a leaf, in order (nested sequences and allocations flattened)."""
    if isinstance(s, Allocate):
        return _atoms(s.body)
    if isinstance(s, Seq):
        return [a for x in s.stmts for a in _atoms(x)]
    return [s]


def _thread_envs(env: dict[IterVar, int], threads: Sequence[tuple[IterVar, int]]
                 ) -> list[tuple[tuple[int, ...], dict[IterVar, int]]]:
    """Each virtual thread's index per thread loop, and ``env`` with those loops bound to it, in turn."""
    return [(combo, {**env, **{v: i for (v, _), i in zip(threads, combo)}})
            for combo in itertools.product(*(range(n) for _, n in threads))]


def _is_leaf(s: Stmt) -> bool:
    """A statement that becomes VTA operations by itself (the coproc scopes of spec §7.4)."""
    if isinstance(s, Allocate):
        return _is_leaf(s.body)
    if isinstance(s, Seq):
        return all(_is_leaf(x) for x in s.stmts)
    return isinstance(s, Pragma) or _is_gemm_nest(s)


class _Emitter:
    def __init__(self, func: LoweredFunc, placements: Mapping[Buffer, Placement], env: Environment,
                 like_tvm: bool) -> None:
        self.func = func
        self.placements = placements
        self.env = env
        self.like_tvm = like_tvm
        self.templates: dict[int, Template] = {}
        self.ops: list[VtaOp] = []
        self.scopes: list[Scope] = []

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
                t = GemmTemplate(loops, call, self.placements, pipeline_safe=not self.like_tvm)
            self.templates[id(s)] = t
        return t

    def tvm_scopes(self, s: Stmt, env: dict[IterVar, int], threads: Sequence[tuple[IterVar, int]]) -> None:
        """A leaf as TVM emits it: each run of one module's operations, once per thread in turn."""
        combos = _thread_envs(env, threads)
        runs: list[tuple[int, list[list[VtaOp]]]] = []  # (module, operations of each thread)
        for atom in _atoms(s):
            per_thread = [self.template(atom).instantiate(thread_env) for _, thread_env in combos]
            if not per_thread[0]:
                continue
            module = per_thread[0][0].module
            if runs and runs[-1][0] == module:
                for ops, more in zip(runs[-1][1], per_thread):
                    ops.extend(more)
            else:
                runs.append((module, per_thread))
        for _, per_thread in runs:
            for (combo, _), ops in zip(combos, per_thread):
                self.ops.extend(ops)
                self.scopes.append(Scope(combo, tuple(ops)))

    def stmt(self, s: Stmt, env: dict[IterVar, int], threads: Sequence[tuple[IterVar, int]]) -> None:
        if _is_leaf(s) and self.like_tvm:
            self.tvm_scopes(s, env, threads)
        elif _is_leaf(s):
            for _, thread_env in _thread_envs(env, threads):
                for atom in _atoms(s):
                    self.ops.extend(self.template(atom).instantiate(thread_env))
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


def emit_ops(func: LoweredFunc, placements: Mapping[Buffer, Placement], env: Environment, *,
             like_tvm: bool = False) -> tuple[list[VtaOp], list[Scope]]:
    """The VTA operations of ``func`` in program order (tokens not yet placed), and with ``like_tvm``
    TVM's coproc scopes in program order (else no scopes)."""
    em = _Emitter(func, placements, env, like_tvm)
    em.stmt(func.body, {}, ())
    return em.ops, em.scopes
