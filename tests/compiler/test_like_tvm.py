"""build(..., like_tvm=True): the program TVM's VTA lowering emits for a schedule (the one the published
board times measured): its order of virtual threads, its tokens, its GEMM folding; same results."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.conftest import check_compiled_bit_exact
from vta.compiler.build import build
from vta.compiler.codegen.deps import inject_scope_tokens
from vta.compiler.codegen.emit import Scope
from vta.compiler.codegen.kernels import kernel_ops
from vta.compiler.codegen.ops import COMPUTE, LOAD, STORE, Footprint, KernelOp, LoadOp, StoreOp
from vta.compiler.expr import IterVar
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, DenseConfig, Epilogue, conv2d, dense
from vta.compiler.ops.conv2d_transpose import Conv2dTransposeWorkload, conv2d_transpose, dilate
from vta.errors import LoweringError

EP = Epilogue(shift=8, clip=(0, 127))
# 2 row tiles per thread, the reduction in 2 load steps: exercises both TVM scope rules
CONV = (Conv2dWorkload("t", 8, 8, 32, 32, 3, 1, 1),
        Conv2dConfig(tile_h=[4, 2], tile_w=[1, 8], tile_ci=[2, 1], tile_co=[1, 2], h_nthread=2))


def _runs(ops):
    """The program as runs of one module: [(module, count), ...]."""
    out: list[list[int]] = []
    for op in ops:
        if out and out[-1][0] == op.module:
            out[-1][1] += 1
        else:
            out.append([op.module, 1])
    return [tuple(r) for r in out]


def test_each_module_run_is_replicated_per_thread_in_turn():
    """TVM's InjectVirtualThread replicates each coproc scope: both threads' resets, both threads' loads,
    then both GEMMs; this compiler runs each thread's load-GEMM pair in turn instead."""
    op = conv2d(*CONV, EP)
    tvm = build(op.schedule, op.args, op.name, like_tvm=True).ops
    native = build(op.schedule, op.args, op.name).ops
    assert _runs(tvm)[:5] == [(COMPUTE, 2), (LOAD, 4), (COMPUTE, 2), (LOAD, 4), (COMPUTE, 2 + 6)]
    assert _runs(native)[:4] == [(COMPUTE, 2), (LOAD, 2), (COMPUTE, 1), (LOAD, 2)]


def test_tokens_follow_every_change_of_module_within_a_thread():
    """CoProcSync's rule: in each thread, one token from a scope to the next whenever the module changes,
    data shared or not (the reset pushes to the load although they touch different SRAMs)."""
    op = conv2d(*CONV, EP)
    ops = build(op.schedule, op.args, op.name, like_tvm=True).ops
    reset0, reset1, inp0, wgt0, inp1, wgt1, gemm0, gemm1 = ops[:8]
    assert reset0.pushes == {LOAD} and reset1.pushes == {LOAD} and not reset0.pops
    assert inp0.pops == {COMPUTE} and inp1.pops == {COMPUTE} and wgt0.pushes == wgt1.pushes == {COMPUTE}
    assert gemm0.pops == {LOAD} and gemm0.pushes == {LOAD} and gemm1.pops == {LOAD}
    pushes = {m: sum(o.module == src and m in o.pushes for o in ops) for src, m in
              ((LOAD, COMPUTE), (COMPUTE, LOAD), (COMPUTE, STORE), (STORE, COMPUTE))}
    pops = {m: sum(o.module == m and src in o.pops for o in ops) for src, m in
            ((LOAD, COMPUTE), (COMPUTE, LOAD), (COMPUTE, STORE), (STORE, COMPUTE))}
    assert pushes == pops  # balanced: nothing left in a token queue at the end


@pytest.mark.parametrize("make", [
    lambda: conv2d(*CONV, EP),
    lambda: conv2d(Conv2dWorkload("oc", 6, 6, 32, 64, 3, 2, 1),
                   Conv2dConfig(tile_h=[1, 3], tile_w=[1, 3], tile_ci=[1, 2], tile_co=[2, 2], oc_nthread=2), EP),
    lambda: conv2d(Conv2dWorkload("g", 8, 8, 64, 64, 3, 1, 1, groups=4),
                   Conv2dConfig(tile_h=[1, 8], tile_w=[1, 8], tile_ci=[1, 1], tile_co=[4, 1], oc_nthread=2), EP),
    lambda: dense(1, 256, 128, DenseConfig(tile_b=[1, 1], tile_ci=[1, 16], tile_co=[8, 1], oc_nthread=1), EP,
                  loads_per_batch_row=True),
    lambda: dense(1, 64, 64, DenseConfig(tile_b=[1, 1], tile_ci=[2, 2], tile_co=[2, 2], oc_nthread=2), EP),
], ids=["conv_h_threads", "conv_oc_threads", "grouped", "dense_reduction", "dense_threads"])
def test_like_tvm_programs_are_bit_exact_and_pass_the_verifier(make, rng):
    check_compiled_bit_exact(make(), rng, like_tvm=True)


def test_like_tvm_conv2d_transpose_is_bit_exact(rng):
    op = conv2d_transpose(Conv2dTransposeWorkload("up", 4, 4, 32, 16, 4, 2, 1), None, EP)
    d = dilate(rng.integers(-128, 128, (1, 2, 4, 4, 1, 16)).astype(np.int8), 2)
    k = rng.integers(-128, 128, op.args[1].shape).astype(np.int8)
    check_compiled_bit_exact(op, rng, inputs=(d, k), like_tvm=True)


def test_a_reduction_folds_into_the_hardware_loops_as_tvm_folds_it():
    """TVM makes the two outermost loops the hardware loops whatever they write: the LSTM dense tile is one
    GEMM over 16 input blocks of one accumulator entry (this compiler splits it: the board's II=1
    pipeline can lose such back-to-back updates)."""
    op = dense(1, 256, 128, DenseConfig(tile_b=[1, 1], tile_ci=[1, 16], tile_co=[8, 1], oc_nthread=1), EP,
               loads_per_batch_row=True)
    gemms = [o for o in build(op.schedule, op.args, op.name, like_tvm=True).ops
             if isinstance(o, KernelOp) and o.gemm and not o.reset]
    assert len(gemms) == 8 and all(o.loops[0] == (16, 0, 1, 1) and len(o.uops) == 1 for o in gemms)
    native = [o for o in build(op.schedule, op.args, op.name).ops
              if isinstance(o, KernelOp) and o.gemm and not o.reset]
    assert len(native) == 8 * 16

    v = [IterVar(n, e) for n, e in (("a", 3), ("b", 4), ("c", 2), ("r", 5))]
    forms = [{v[0]: 4, v[1]: 1, v[2]: 12, None: 0}, {v[3]: 1, v[2]: 5, None: 0}, {v[3]: 2, None: 0}]
    (k,) = kernel_ops([(x, x.extent) for x in v], forms, ["acc", "inp", "wgt"], gemm=True, where="t",
                      pipeline_safe=False)
    assert k.loops == ((12, 1, 0, 0), (2, 12, 5, 0)) and k.uops == tuple((0, r, 2 * r) for r in range(5))


def _load():
    return LoadOp(LOAD, (), (Footprint("inp", 0, 1),))


def _gemm():
    return KernelOp(COMPUTE, (Footprint("acc", 0, 1),), (Footprint("acc", 0, 1),))


def test_scope_tokens_refuse_what_tvm_cannot_express():
    with pytest.raises(LoweringError, match="outside the virtual threads mix with threaded ones"):
        inject_scope_tokens([Scope((), (_load(),)), Scope((0,), (_gemm(),)), Scope((1,), (_gemm(),))])
    with pytest.raises(LoweringError, match="load scope is followed by a store scope"):
        inject_scope_tokens([Scope((), (_load(),)), Scope((), (StoreOp(STORE, (Footprint("acc", 0, 1),), ()),))])
