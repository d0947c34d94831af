"""hw_exec: the bitstream's data semantics (8-bit output shadow and friends) next to the reference."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.programs import load_uops, program, put
from tests.sim.test_device import store
from tests.sim.test_lint import stored
from vta.errors import RaceError
from vta.isa import (
    ALU_ADD,
    ALU_MUL,
    ALU_SHR,
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_UOP,
    MEM_WGT,
    AluInsn,
    GemmInsn,
    MemInsn,
)
from vta.sim.device import SimDevice
from vta.sim.vector import load_vector

ACC = np.arange(4 * 16, dtype=np.int32).reshape(4, 16) * 37 - 1000


def acc_from(dev, values=ACC, mt=MEM_ACC, **kw):
    buf = put(dev, values)
    elem = 16 if mt == MEM_ACC_8BIT else 64
    return MemInsn(memory_type=mt, dram_base=buf.phys_addr // elem, y_size=1, x_size=len(values), x_stride=len(values),
                   **kw)


def both(build) -> tuple[np.ndarray, np.ndarray]:
    """Bytes the STORE wrote with the reference semantics and with the bitstream's."""
    outs = []
    for hw in (False, True):
        dev = SimDevice()
        p, out = build(dev)
        p.run(fidelity="pynq", hw_exec=hw)
        outs.append(out.data[:64].view(np.int8).reshape(4, 16).copy())
    return outs[0], outs[1]


def test_store_after_load_acc_sends_the_stale_shadow():
    ref, hw = both(lambda dev: stored(dev, [acc_from(dev), GemmInsn(iter_out=0, push_next_dep=1)]))
    assert np.array_equal(ref, ACC.astype(np.int8))
    assert not hw.any()  # the shadow was never written


def test_reset_gemm_shadow_holds_old_acc_plus_dot():
    def build(dev):
        inp = put(dev, np.full((1, 16), 2, dtype=np.int8))
        wgt = put(dev, np.full((1, 256), 3, dtype=np.int8))
        ins = [acc_from(dev), load_uops(dev, [(0, 0, 0)]),
               MemInsn(memory_type=MEM_INP, dram_base=inp.phys_addr // 16, y_size=1, x_size=1, x_stride=1,
                       push_next_dep=1),
               MemInsn(memory_type=MEM_WGT, dram_base=wgt.phys_addr // 256, y_size=1, x_size=1, x_stride=1,
                       push_next_dep=1),
               GemmInsn(pop_prev_dep=1, iter_out=0), GemmInsn(pop_prev_dep=1, iter_out=0),
               GemmInsn(reset_reg=1, uop_end=1, iter_out=4, dst_factor_out=1, push_next_dep=1)]
        return stored(dev, ins)

    ref, hw = both(build)
    assert not ref.any()
    assert np.array_equal(hw, (ACC + 16 * 2 * 3).astype(np.int8))


def test_alu_writes_the_shadow_and_shr_uses_five_signed_bits():
    def build(dev, op=ALU_SHR, imm=20):
        ins = [acc_from(dev), load_uops(dev, [(0, 0, 0)]),
               AluInsn(alu_opcode=op, use_imm=1, imm=imm, uop_end=1, iter_out=4, dst_factor_out=1,
                       src_factor_out=1, push_next_dep=1)]
        return stored(dev, ins)

    ref, hw = both(build)
    assert np.array_equal(ref, (ACC >> 20).astype(np.int8))
    assert np.array_equal(hw, (ACC << 12).astype(np.int8))  # 20 = 0b10100 -> -12: a left shift by 12
    ref, hw = both(lambda dev: build(dev, ALU_ADD, 5))
    assert np.array_equal(ref, hw) and np.array_equal(hw, (ACC + 5).astype(np.int8))


def test_mul_and_acc8bit_do_nothing_on_the_bitstream():
    def build(dev):
        ins = [acc_from(dev), load_uops(dev, [(0, 0, 0)]),
               AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=0, uop_end=1, iter_out=4, dst_factor_out=1),
               AluInsn(alu_opcode=ALU_MUL, use_imm=1, imm=3, uop_end=1, iter_out=4, dst_factor_out=1),
               acc_from(dev, np.full((4, 16), 9, dtype=np.int8), MEM_ACC_8BIT),
               AluInsn(alu_opcode=ALU_ADD, use_imm=1, imm=1, uop_end=1, iter_out=4, dst_factor_out=1,
                       push_next_dep=1)]
        return stored(dev, ins)

    ref, hw = both(build)
    assert np.array_equal(ref, np.full((4, 16), 10, dtype=np.int8))
    assert np.array_equal(hw, (ACC + 1).astype(np.int8))  # MUL and the ACC_8BIT load left ACC as loaded


def test_wgt_pads_and_2d_uop_loads_follow_the_hls_copies():
    dev = SimDevice()
    wgt = put(dev, np.arange(2 * 256, dtype=np.int8))
    uops = put(dev, np.arange(1, 9, dtype=np.uint32))
    insns = [MemInsn(memory_type=MEM_WGT, dram_base=wgt.phys_addr // 256, y_size=1, x_size=2, x_stride=2,
                     x_pad_0=1, push_next_dep=1),
             MemInsn(memory_type=MEM_UOP, dram_base=uops.phys_addr // 4, sram_base=100, y_size=2, x_size=2,
                     x_stride=4),
             GemmInsn(pop_prev_dep=1, iter_out=0)]
    for hw, first in ((False, 1), (True, 0)):  # the reference puts the left pad entry first
        dev.sram.wgt_t[:3] = -1
        dev.sram.uop[100:104] = 0
        program(dev, insns).run(fidelity="pynq", hw_exec=hw)
        stored_first = dev.sram.wgt_t[first].T.ravel()  # entry ``first`` holds DRAM element 0
        assert np.array_equal(stored_first, np.arange(256, dtype=np.int8))
        assert dev.sram.uop[100:104].tolist() == ([1, 2, 5, 6] if not hw else [1, 2, 0, 0])


def test_hw_exec_matches_the_reference_where_the_lint_is_clean(vectors_dir):
    for name in ("conv_56_64_128_k1_s2", "conv_14_256_512_k3_s2"):
        v = load_vector(vectors_dir / "conv" / name)
        dev = SimDevice()
        buf = dev.dram.alloc_at(v.phys_base, len(v.mem_in))
        buf.data[:] = v.mem_in
        run = dev.run(v.insn_phys, v.insn_count, fidelity="pynq", hw_exec=True)
        assert run.divergences == () and np.array_equal(buf.data, v.mem_out)
        assert run.counters == v.stats
        buf.data[:] = v.mem_in
        dev.run(v.insn_phys, v.insn_count)  # the reference mode afterwards is unaffected
        assert np.array_equal(buf.data, v.mem_out)


def test_hw_exec_shows_the_difference_on_a_divergent_vector(vectors_dir):
    v = load_vector(vectors_dir / "random" / "rand_001")
    dev = SimDevice()
    buf = dev.dram.alloc_at(v.phys_base, len(v.mem_in))
    buf.data[:] = v.mem_in
    run = dev.run(v.insn_phys, v.insn_count, fidelity="pynq", hw_exec=True)
    assert {d.kind for d in run.divergences} == {"shift_range", "gemm_pipeline"}
    assert not np.array_equal(buf.data, v.mem_out)


def test_refused_hw_exec_run_leaves_dram_unchanged(dev):
    st, out = store(dev)  # no token from compute: a race the reference check refuses first
    before = out.data.copy()
    p = program(dev, [acc_from(dev), st])
    with pytest.raises(RaceError, match=r"^race: instruction 1, store module: STORE reads ACC entries 0\.\.3 written "
                                        r"by instruction 0 \(compute\) with no dependency token"):
        p.run(fidelity="pynq", hw_exec=True)
    assert np.array_equal(out.data, before)
