"""The command queue reproduces the reference instruction streams (spec §4.4-§4.7)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vta.config import Environment
from vta.errors import BadMemoryTypeError, DramOutOfBoundsError, EncodingError, IllegalDepFlagError
from vta.isa import (
    ALU_ADD,
    DEP_BITS,
    DEP_MASK,
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_LOAD,
    OP_STORE,
    POP_NEXT,
    POP_PREV,
    PUSH_NEXT,
    PUSH_PREV,
    AluInsn,
    FinishInsn,
    GemmInsn,
    MemInsn,
    RawInsn,
    decode_insn,
    get_isa,
)
from vta.runtime import DEBUG_DUMP_INSN, DEBUG_DUMP_UOP, DEBUG_FORCE_SERIAL, Runtime, UopKernel
from vta.runtime.deps import InsnBuffer

STORE_NOP = MemInsn(opcode=OP_STORE, memory_type=MEM_UOP)
LOAD_NOP = MemInsn(opcode=OP_LOAD, memory_type=MEM_INP)
COMPUTE_NOP = MemInsn(opcode=OP_LOAD, memory_type=MEM_UOP)


def flags(insn, **dep):
    return replace(insn, **{f"{k}_dep": v for k, v in dep.items()})


def test_empty_synchronize_is_the_reference_drain(rt, launches):
    rt.queue.synchronize()
    assert launches.last == [flags(STORE_NOP, push_prev=1), flags(LOAD_NOP, push_next=1),
                             flags(COMPUTE_NOP, pop_prev=1, pop_next=1), FinishInsn()]
    assert FinishInsn().encode(rt.env) == (3).to_bytes(16, "little")


def test_push_merges_into_the_last_instruction_of_the_stage(rt, launches):
    buf = rt.alloc(4096)
    q = rt.queue
    q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
    q.dep_push(1, 2)  # merged into the LOAD
    q.dep_push(1, 2)  # the LOAD has the bit already: NOP
    q.dep_pop(1, 2)
    q.dep_pop(1, 2)  # second pending pop commits the first as a compute NOP
    q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_ACC)  # absorbs the second
    q.synchronize()
    base = buf.phys_addr
    assert launches.last == [
        MemInsn(memory_type=MEM_INP, dram_base=base // 16, y_size=1, x_size=1, x_stride=1, push_next_dep=1),
        flags(LOAD_NOP, push_next=1),
        flags(COMPUTE_NOP, pop_prev=1),
        MemInsn(memory_type=MEM_ACC, dram_base=base // 64, y_size=1, x_size=1, x_stride=1, pop_prev_dep=1),
        flags(STORE_NOP, push_prev=1), flags(LOAD_NOP, push_next=1), flags(COMPUTE_NOP, pop_prev=1, pop_next=1),
        FinishInsn()]


def test_pushes_never_merge_into_load_nops_but_do_into_store_nops(rt, launches):
    buf = rt.alloc(4096)
    q = rt.queue
    q.load_2d(buf, 0, 0, 1, 1, 0, 0, 0, 0, 0, MEM_INP)  # x_size 0: counts as no stage
    q.dep_push(1, 2)
    q.dep_push(3, 2)
    q.dep_push(3, 2)  # would merge into the STORE NOP; it has push_prev already, so a new NOP
    q.dep_pop(1, 2)
    q.dep_pop(3, 2)
    q.dep_pop(3, 2)
    q.synchronize()
    assert [i.flags_text() for i in launches.last[:4]] == ["-", "push_next", "push_prev", "push_prev"]


def queued(rt):
    return [decode_insn(w.to_bytes(16, "little"), rt.env) for w in rt.queue.insns.words]


def test_gemm_alu_fields_and_uop_loads(rt):
    q = rt.queue
    q.push_gemm("g", lambda: UopKernel.gemm([(3, 11, 17, 23), (5, 13, 19, 29)], [(0, 1, 2), (1, 2, 3)]))
    q.push_alu("a", lambda: UopKernel.alu([(16, 1, 2)], [(4, 5)], ALU_ADD, use_imm=True, imm=-8))
    q.push_gemm("g", lambda: pytest.fail("cached kernels are not rebuilt"))
    up = rt._uop_buf.phys_addr // 4
    s = queued(rt)
    assert s[0] == MemInsn(memory_type=MEM_UOP, sram_base=0, dram_base=up, y_size=1, x_size=2, x_stride=2)
    assert s[1] == GemmInsn(uop_bgn=0, uop_end=2, iter_out=3, dst_factor_out=11, src_factor_out=17,
                            wgt_factor_out=23, iter_in=5, dst_factor_in=13, src_factor_in=19, wgt_factor_in=29)
    assert s[2] == MemInsn(memory_type=MEM_UOP, sram_base=2, dram_base=up + 2, y_size=1, x_size=1, x_stride=1)
    # a single ALU loop becomes the inner loop (spec §4.4)
    assert s[3] == AluInsn(uop_bgn=2, uop_end=3, iter_out=1, iter_in=16, dst_factor_in=1, src_factor_in=2,
                           alu_opcode=ALU_ADD, use_imm=1, imm=-8)
    assert s[4] == GemmInsn(uop_bgn=0, uop_end=2, iter_out=3, dst_factor_out=11, src_factor_out=17,
                            wgt_factor_out=23, iter_in=5, dst_factor_in=13, src_factor_in=19, wgt_factor_in=29)
    assert len(s) == 5 and len(rt.queue.kernels) == 2
    q.reset()


def test_uop_ring_wraps_and_evicts_like_the_reference():
    from vta.runtime.uop_cache import UopRing

    ring = UopRing(10)
    k = [UopKernel.gemm([], [(d, 0, 0) for d in range(n)]) for n in (4, 4, 3, 2)]
    assert ring.place(k[0]) == (0, 4, True)
    assert ring.place(k[1]) == (4, 8, True)
    assert ring.place(k[0]) == (0, 4, False)
    assert ring.place(k[2]) == (0, 3, True)  # 8 + 3 > 10: wrap, evicting k0
    assert ring.cache == [k[2], k[1]] and k[0] not in ring.where
    assert ring.place(k[3]) == (3, 5, True)  # evicts k1 (starts at 4 < 5)
    assert ring.cache == [k[2], k[3]]


def test_force_serial_chains_every_stage_change(rt, launches):
    buf = rt.alloc(4096)
    q = rt.queue
    q.set_debug_mode(DEBUG_FORCE_SERIAL)
    q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_ACC)
    q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
    q.push_alu("a", lambda: UopKernel.alu([], [(0, 0)], ALU_ADD, use_imm=True, imm=1))
    q.store_2d(0, MEM_OUT, buf, 0, 1, 1, 1)
    q.synchronize()
    assert [i.flags_text() for i in launches.last] == [
        "push_prev", "pop_next push_next", "pop_prev", "push_next", "pop_prev push_prev",
        "pop_next", "push_prev", "pop_next", "push_next", "pop_prev", "-"]


def test_auto_flush_threshold_is_count_plus_six(launches_small):
    rt, launches = launches_small
    buf = rt.alloc(4096)
    for _ in range(10):
        rt.queue.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_WGT)
    # capacity 16: after the 10th push (10 + 6) * 16 is not > 16 * 16; the 11th flushes
    assert launches.streams == []
    rt.queue.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_WGT)
    assert len(launches.streams) == 1 and len(launches.last) == 11 + 4
    assert rt.stats.auto_flushes == 1


@pytest.fixture
def launches_small():
    from tests.runtime.conftest import Launches

    rt = Runtime("sim", insn_capacity=16)
    yield rt, Launches(rt)
    rt.close()


def test_debug_dumps(rt, capsys):
    q = rt.queue
    q.set_debug_mode(DEBUG_DUMP_INSN | DEBUG_DUMP_UOP)
    q.load_2d(rt.alloc(128), 0, 2, 1, 2, 0, 0, 0, 0, 0, MEM_ACC)
    q.push_alu("a", lambda: UopKernel.alu([(2, 1, 1)], [(0, 0)], ALU_ADD, use_imm=True, imm=3))
    q.synchronize()
    out = capsys.readouterr().out
    assert "push_alu('a'): ALU kernel, 1 uop(s), ADD imm 3\n  loop 0: extent 2 factors (1, 1)" in out
    assert "There are 7 instructions" in out and "INSTRUCTION 6: FINISH [-]  tokens l2g=0 g2l=0 g2s=0 s2g=0" in out


def test_queue_argument_errors(rt):
    q = rt.queue
    buf = rt.alloc(64)
    with pytest.raises(IllegalDepFlagError, match=r"^illegal_dep_flag: load module: dep_push\(1, 3\): queue ids"):
        q.dep_push(1, 3)
    with pytest.raises(BadMemoryTypeError, match=r"^bad_memory_type: instruction 0, load module: load_2d memory_type "
                                                 r"4 \(OUT\) cannot be loaded"):
        q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_OUT)
    with pytest.raises(BadMemoryTypeError, match=r"store_2d memory_type 3 \(ACC\); only OUT \(4\) is stored"):
        q.store_2d(0, MEM_ACC, buf, 0, 1, 1, 1)
    with pytest.raises(DramOutOfBoundsError, match=r"^dram_oob: instruction 0, load module: load_2d of 2x3 INP "
                                                   r"elements \(stride 3\) at element offset 0 reads DRAM bytes"):
        q.load_2d(buf, 0, 3, 2, 3, 0, 0, 0, 0, 0, MEM_INP)
    with pytest.raises(EncodingError, match=r"^load_2d: x_pad_0=16 does not fit its 4-bit unsigned field"):
        q.load_2d(buf, 0, 1, 1, 1, 16, 0, 0, 0, 0, MEM_INP)
    with pytest.raises(EncodingError, match=r"^load_2d: sram_base must be an integer, got 1.5"):
        q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 1.5, MEM_INP)
    assert len(q.insns) == 0


def test_insn_buffer_balance_and_numpy_ints(env):
    b = InsnBuffer(env)
    b.dep_push(2, 1)
    b.dep_push(2, 1)
    b.dep_pop(2, 1)
    assert b.outstanding() == [(2, 1, 1)]
    rt = Runtime("sim")
    try:
        buf = rt.alloc(4096)
        rt.queue.load_2d(buf, np.int64(1), np.int32(1), 1, 1, 0, 0, 0, 0, np.uint16(3), MEM_INP)
        assert rt.queue.insns.words[0] >> 10 & 0xFFFF == 3
    finally:
        rt.close()


def test_flag_bits_and_fixed_words_come_from_the_codec(env):
    # one element-size table for the queue, the export, the simulator's DMA checks and its timing model
    want = {MEM_UOP: 4, MEM_WGT: 256, MEM_INP: 16, MEM_ACC: 64, MEM_OUT: 16, MEM_ACC_8BIT: 16}
    assert get_isa(env).elem_bytes == want
    for name, bit in DEP_BITS.items():
        assert int.from_bytes(MemInsn(**{name: 1}, memory_type=0, opcode=0).encode(env), "little") == bit
    assert sum(DEP_BITS.values()) == DEP_MASK and tuple(DEP_BITS.values()) == (POP_PREV, POP_NEXT, PUSH_PREV, PUSH_NEXT)
    nops = InsnBuffer(env).nops
    decoded = [decode_insn(nops[s].to_bytes(16, "little"), env) for s in (1, 2, 3)]
    assert decoded == [LOAD_NOP, COMPUTE_NOP, STORE_NOP]
    raw = RawInsn(opcode=6, pop_next_dep=1, push_prev_dep=1, bits=(1 << 127) | DEP_MASK)  # flags win over bits
    assert decode_insn(raw.encode(env), env) == replace(raw, bits=(1 << 127) | 6 | POP_NEXT | PUSH_PREV)


@pytest.mark.parametrize("hw_ver,store_type", [("0.0.1", MEM_OUT & 3), ("0.0.2", MEM_OUT)])
def test_store_memory_type_is_truncated_to_the_field(env, hw_ver, store_type):
    env = Environment.from_dict({**env.to_dict(), "HW_VER": hw_ver})
    with Runtime("sim", env=env) as rt:
        out = rt.alloc(4096)
        rt.queue.store_2d(0, MEM_OUT, out, 0, 1, 1, 1)
        rt.queue.load_2d(out, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
        words = rt.queue.insns.words
        got = [decode_insn(w.to_bytes(16, "little"), env) for w in words]
        assert [(g.opcode, g.memory_type) for g in got] == [(OP_STORE, store_type), (OP_LOAD, MEM_INP)]
