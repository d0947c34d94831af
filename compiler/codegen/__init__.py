"""vta.compiler.codegen: a lowered loop nest to VTA operations (DMA, micro-op kernels, tokens)."""

from __future__ import annotations

from vta.compiler.codegen.deps import inject_scope_tokens, inject_tokens
from vta.compiler.codegen.emit import emit_ops
from vta.compiler.codegen.ops import VtaOp
from vta.compiler.codegen.sram import plan_sram
from vta.compiler.lower.ir import LoweredFunc
from vta.config import Environment

__all__ = ["generate"]


def generate(func: LoweredFunc, env: Environment, *, like_tvm: bool = False) -> list[VtaOp]:
    """Place SRAM tiles, emit the operations in program order and add the dependency tokens: from the
    data hazards, or with ``like_tvm`` where TVM's lowering puts them (:mod:`vta.compiler.codegen.emit`)."""
    ops, scopes = emit_ops(func, plan_sram(func, env), env, like_tvm=like_tvm)
    if like_tvm:
        inject_scope_tokens(scopes)
    else:
        inject_tokens(ops, env)
    return ops
