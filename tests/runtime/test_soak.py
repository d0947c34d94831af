"""Many synchronize cycles leave memory, cached kernels and buffers where they were."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from vta.isa import ALU_ADD, ALU_SHR, MEM_ACC, MEM_OUT
from vta.runtime import Runtime, UopKernel


def _cycle(rt: Runtime, a, out) -> None:
    q = rt.queue
    q.load_2d(a, 0, 16, 1, 16, 0, 0, 0, 0, 0, MEM_ACC)
    q.push_alu("add", lambda: UopKernel.alu([(16, 1, 1)], [(0, 0)], ALU_ADD, use_imm=True, imm=3, env=rt.env))
    q.push_alu("shr", lambda: UopKernel.alu([(16, 1, 1)], [(0, 0)], ALU_SHR, use_imm=True, imm=1, env=rt.env))
    q.dep_push(2, 3)
    q.dep_pop(2, 3)
    q.store_2d(0, MEM_OUT, out, 0, 16, 1, 16)
    q.synchronize()


def _soak(cycles: int) -> None:
    rt = Runtime("sim")
    data = np.arange(256, dtype=np.int32).reshape(16, 16)
    a, out = rt.alloc(data.nbytes), rt.alloc(256)
    a.copy_from(data)
    for _ in range(50):
        _cycle(rt, a, out)
    gc.collect()
    shape = (len(rt.buffers), len(rt.queue.kernels), len(rt.backend.dram.blocks), len(rt.verifier.dram.blocks),
             len(rt.verifier.device._programs))
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    for _ in range(cycles):
        _cycle(rt, a, out)
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    tracemalloc.stop()
    assert np.array_equal(out.view(np.int8, (16, 16)), ((data + 3) >> 1).astype(np.int8))
    assert (len(rt.buffers), len(rt.queue.kernels), len(rt.backend.dram.blocks), len(rt.verifier.dram.blocks),
            len(rt.verifier.device._programs)) == shape
    assert grown < 64 * 1024, f"{grown} bytes more after {cycles} cycles"
    assert rt.stats.runs == cycles + 50
    rt.close()


def test_10000_cycles_do_not_grow():
    _soak(10_000)  # about 5 s: fast enough for the default run
