"""Programs built with the runtime API alone, each checked against numpy (issue 3, item 5)."""

from __future__ import annotations

import logging
import re

import numpy as np

from tests.runtime import programs
from vta.config import get_env
from vta.isa import ALU_ADD, MEM_ACC, MEM_OUT, MEM_UOP, MemInsn
from vta.runtime import Runtime, UopKernel


def test_matmul_one_tile(rt, rng):
    got, want = programs.matmul_tile(rt, rng)
    assert np.array_equal(got, want)


def test_blocked_gemm_two_contexts(rt, rng, launches):
    got, want = programs.blocked_gemm(rt, rng)
    assert np.array_equal(got, want)
    wgt_loads = [i for i in launches.last if isinstance(i, MemInsn) and i.memory_type == 1 and i.x_size]
    assert len(wgt_loads) == 1  # weights loaded once, reused by every row tile


def test_vector_add_shift_clip(rt, rng):
    out, want = programs.vector_alu(rt, rng)
    assert np.array_equal(out.view(np.int8, want.shape), want)


def test_conv3x3_tile_padding_by_dma(rt, rng):
    got, want = programs.conv3x3_tile(rt, rng)
    assert np.array_equal(got, want)


def test_program_bigger_than_the_instruction_buffer(rng, caplog):
    caplog.set_level(logging.INFO, logger="vta.runtime.queue")
    with Runtime("sim", insn_capacity=40) as rt:
        got, want = programs.blocked_gemm(rt, rng, m=64, rows=4)  # tokens in flight at the cuts are carried over
        assert np.array_equal(got, want)
        flushes = rt.stats.auto_flushes
        assert flushes >= 2
        logged = [r.getMessage() for r in caplog.records if r.name == "vta.runtime.queue"]
        assert len(logged) == flushes
        assert all(re.fullmatch(r"automatic flush \d+: the instruction buffer is full; ran \d+ instructions and \d+ "
                                r"micro-ops, carrying \d+ token\(s\) into the next run of the same program", m)
                   for m in logged), logged
        outs = [programs.vector_alu(rt, rng, entries=8, key=i, sync=False) for i in range(12)]
        rt.queue.synchronize()  # cuts fall inside tiles: later runs read SRAM the earlier run wrote
        assert rt.stats.auto_flushes >= flushes + 3
        for buf, want in outs:
            assert np.array_equal(buf.view(np.int8, want.shape), want)


def test_kernel_set_bigger_than_the_uop_sram(rng):
    env = get_env().replace(LOG_UOP_BUFF_SIZE=6)  # 16 micro-ops
    with Runtime("sim", env=env) as rt:
        from tests.runtime.conftest import Launches

        launches = Launches(rt)
        q = rt.queue
        a = rng.integers(-50, 50, (6, 16), dtype=np.int32)
        acc, out = programs.put(rt, a), rt.alloc(6 * 16)
        q.load_2d(acc, 0, 6, 1, 6, 0, 0, 0, 0, 0, MEM_ACC)
        order = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        for j in order:  # five 6-uop kernels: 30 micro-ops through a 16-entry ring
            q.push_alu(("evict", j), lambda j=j: UopKernel.alu([], [(u, u) for u in range(6)], ALU_ADD,
                                                              use_imm=True, imm=j + 1, env=env))
        q.dep_push(2, 3)
        q.dep_pop(2, 3)
        q.store_2d(0, MEM_OUT, out, 0, 6, 1, 6)
        q.synchronize()
        uop_loads = [i for i in launches.last if isinstance(i, MemInsn) and i.memory_type == MEM_UOP and i.x_size]
        assert [i.sram_base for i in uop_loads] == [0, 6, 0, 6, 0, 6, 0, 6, 0, 6]
        base = rt._uop_buf.phys_addr // 4
        assert [i.dram_base - base for i in uop_loads] == list(range(0, 60, 6))  # issue-time log (spec §9 item 6)
        want = (a + 2 * sum(j + 1 for j in range(5))).astype(np.int8)
        assert np.array_equal(out.view(np.int8, (6, 16)), want)


def test_full_micro_op_buffer_flushes_and_logs(rng, caplog):
    caplog.set_level(logging.INFO, logger="vta.runtime.queue")
    with Runtime("sim", uop_capacity=8) as rt:
        outs = [programs.vector_alu(rt, rng, entries=8, key=i, sync=False) for i in range(3)]
        rt.queue.synchronize()
        assert rt.stats.auto_flushes >= 1
        for buf, want in outs:
            assert np.array_equal(buf.view(np.int8, want.shape), want)
    logged = [r.getMessage() for r in caplog.records if r.name == "vta.runtime.queue"]
    assert logged and all(m.startswith("automatic flush") for m in logged)
    assert any("the micro-op buffer is full" in m for m in logged), logged
