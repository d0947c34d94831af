"""The verifier refuses bad programs before any backend sees them, naming the instruction."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime import programs
from vta.errors import DeadlockError, DramOutOfBoundsError, RaceError, SramOutOfBoundsError
from vta.isa import MEM_ACC, MEM_INP, MEM_WGT
from vta.runtime import UopKernel


def test_freed_buffer_is_dram_oob(rt, launches):
    buf = rt.alloc(4096)
    rt.queue.load_2d(buf, 0, 4, 1, 4, 0, 0, 0, 0, 0, MEM_INP)
    rt.queue.dep_push(1, 2)
    rt.queue.dep_pop(1, 2)
    rt.free(buf)
    with pytest.raises(DramOutOfBoundsError, match=r"^dram_oob: instruction 0, load module: LOAD INP touches DRAM "
                                                   r"bytes 0x[0-9a-f]+\.\.0x[0-9a-f]+, which are not inside one live "
                                                   r"buffer of this program$"):
        rt.queue.synchronize()
    assert launches.streams == [] and rt.stats.runs == 0
    assert len(rt.queue.insns) == 0  # the refused window is dropped


def test_missing_token_is_a_race(rt, launches):
    q = rt.queue
    q.load_2d(programs.put(rt, np.zeros(256, np.int8)), 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
    q.load_2d(programs.put(rt, np.zeros(256, np.int8)), 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_WGT)
    q.load_2d(programs.put(rt, np.zeros(64, np.int8)), 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_ACC)
    q.push_gemm("g", lambda: UopKernel.gemm([], [(0, 0, 0)]))
    with pytest.raises(RaceError, match=r"^race: instruction 4, compute module: GEMM reads INP entries 0\.\.0 written "
                                        r"by instruction 0 \(load\) with no dependency token ordering the two$"):
        q.synchronize()
    assert launches.streams == []


def test_leftover_token_and_pop_without_push(rt, launches):
    rt.queue.dep_push(2, 1)
    with pytest.raises(DeadlockError, match=r"^deadlock: dependency tokens left over after FINISH: 1 on g2l"):
        rt.queue.synchronize()
    rt.queue.dep_pop(2, 1)
    rt.queue.load_2d(rt.alloc(64), 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
    with pytest.raises(DeadlockError, match=r"^deadlock: instruction 0, load module: waits for a token on g2l "
                                            r"\(compute->load\) that is never pushed"):
        rt.queue.synchronize()
    assert launches.streams == []
    rt.queue.synchronize()  # the queue is usable again
    assert len(launches.streams) == 1


def test_sram_index_past_the_depth(rt):
    q = rt.queue
    q.load_2d(rt.alloc(64 * 4), 0, 4, 1, 4, 0, 0, 0, 0, 2044, MEM_ACC)
    q.push_alu("a", lambda: UopKernel.alu([(8, 1, 1)], [(2044, 2044)], use_imm=True, imm=1))
    with pytest.raises(SramOutOfBoundsError, match=r"^sram_oob: instruction 2, compute module: ALU"):
        q.synchronize()


def test_repeated_program_verifies_from_cache(rt, rng):
    out, _ = programs.vector_alu(rt, rng)
    before = len(rt.verifier.device._programs)
    for _ in range(3):
        rt.queue.load_2d(out, 0, 0, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
        rt.queue.synchronize()
    assert len(rt.verifier.device._programs) == before + 1
