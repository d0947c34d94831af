"""The GEMM tensor intrinsic: one 1x16x16 matrix-vector step of the compute unit (spec §7.2)."""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.expr import Cast, ComputeOp, IterVar, Reduce, TensorLoad, walk
from vta.config import Environment, get_env
from vta.errors import ScheduleError

__all__ = ["GemmIntrin", "GemmMatch", "gemm_intrin"]


@dataclass(frozen=True)
class GemmMatch:
    """Which loads feed the intrinsic and which loops it replaces."""

    inp: TensorLoad
    wgt: TensorLoad
    batch: IterVar
    out_channel: IterVar
    in_channel: IterVar


@dataclass(frozen=True)
class GemmIntrin:
    """out[b, j] += sum_k int32(inp[b, k]) * int32(wgt[j, k]) over one SRAM entry of each buffer."""

    batch: int
    block_in: int
    block_out: int
    name: str = "gemm"

    def match(self, stage: object, var: IterVar, what: str) -> GemmMatch:
        """Check the loops from ``var`` inward and the body against the intrinsic; raise ScheduleError if not."""
        op = stage.op  # type: ignore[attr-defined]
        leaves = stage.leaf_iter_vars  # type: ignore[attr-defined]
        inner = leaves[leaves.index(var):]

        def fail(msg: str) -> ScheduleError:
            return ScheduleError(f"stage {op.name}: {what}: {msg}")

        if not isinstance(op, ComputeOp) or not isinstance(op.body, Reduce) or op.dtype != "int32":
            raise fail("the GEMM intrinsic needs an int32 sum(...) body")
        src = op.body.source
        loads = [_int8_operand(x) for x in (getattr(src, "a", None), getattr(src, "b", None))]
        if getattr(src, "op", None) != "*" or None in loads:
            raise fail(f"body {op.body} is not a sum of int32(int8) x int32(int8) products")
        want = (self.batch, self.block_out, self.block_in)
        got = tuple(v.extent for v in inner)
        expect = (op.axis[-2], op.axis[-1]) if len(op.axis) >= 2 else ()
        if len(inner) != 3 or tuple(inner[:2]) != expect or inner[2] not in op.reduce_axis or got != want:
            names = ", ".join(f"{v.name}:{v.extent}" for v in inner)
            raise fail(f"the loops from {var.name} inward must be the unsplit element loops (batch {want[0]}, "
                       f"out-channel {want[1]}, in-channel {want[2]}), innermost last; got ({names})")
        b, j, k = inner
        by_batch = [x for x in loads if tuple(x.indices[-2:]) == (b, k)]
        by_out = [x for x in loads if tuple(x.indices[-2:]) == (j, k)]
        if len(by_batch) != 1 or len(by_out) != 1 or by_batch[0] is by_out[0]:
            raise fail(f"operands must be indexed [..., {b.name}, {k.name}] and [..., {j.name}, {k.name}]; "
                       f"got {loads[0]} and {loads[1]}")
        for load in loads:
            outer_vars = {n for i in load.indices[:-2] for n in walk(i) if isinstance(n, IterVar)}
            if outer_vars & {b, j, k}:
                raise fail(f"{load} uses an element loop in an outer index")
        return GemmMatch(by_batch[0], by_out[0], b, j, k)


def _int8_operand(x: object) -> TensorLoad | None:
    if isinstance(x, Cast) and x.dtype == "int32" and isinstance(x.value, TensorLoad) and x.value.dtype == "int8":
        return x.value
    return None


def gemm_intrin(env: Environment | None = None) -> GemmIntrin:
    """The GEMM intrinsic for ``env`` (default: the active configuration), as ``env.gemm`` in TVM.

    Examples
    --------
    >>> gemm_intrin().block_in
    16
    """
    env = env or get_env()
    return GemmIntrin(env.BATCH, env.BLOCK_IN, env.BLOCK_OUT)
