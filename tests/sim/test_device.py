"""Every refusal class from a minimal program, with its message; rollback; fuzzed streams."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.programs import load_uops, program, put
from vta.errors import (
    BadMemoryTypeError,
    DeadlockError,
    DramOutOfBoundsError,
    EarlyFinishError,
    IllegalDepFlagError,
    MalformedInsnError,
    MissingFinishError,
    ProgramError,
    RaceError,
    SramOutOfBoundsError,
    UninitSramError,
    UnknownOpcodeError,
)
from vta.isa import (
    ALU_ADD,
    ALU_SHR,
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_STORE,
    AluInsn,
    GemmInsn,
    MemInsn,
    RawInsn,
)
from vta.sim.device import SimDevice


def acc_load(dev, n=4, **flags):
    buf = put(dev, np.arange(n * 16, dtype=np.int32))
    return MemInsn(memory_type=MEM_ACC, dram_base=buf.phys_addr // 64, y_size=1, x_size=n, x_stride=n, **flags)


def store(dev, n=4, **kw):
    out = dev.dram.alloc(n * 16)
    return MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, dram_base=out.phys_addr // 16, y_size=1, x_size=n,
                   x_stride=n, **kw), out


def shift0(**flags):
    return AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=0, uop_bgn=0, uop_end=1, iter_out=1, iter_in=4,
                   dst_factor_in=1, src_factor_in=1, **flags)


def valid_store_program(dev):
    st, out = store(dev, pop_prev_dep=1, push_prev_dep=1)
    return [acc_load(dev), load_uops(dev, [(0, 0, 0)]), shift0(push_next_dep=1), st,
            AluInsn(pop_next_dep=1, iter_out=0)], out  # compute NOP-ish ALU pops store's token


def test_valid_program_stores_truncated_accumulators(dev):
    insns, out = valid_store_program(dev)
    r = program(dev, insns).run()
    assert out.view(np.int8).tolist() == list(np.arange(64, dtype=np.int32).astype(np.int8))
    assert r.counters["out_store_nbytes"] == 64 and r.counters["alu_counter"] == 4


def expect(dev, insns, cls, pattern, finish=True):
    with pytest.raises(cls, match=pattern):
        program(dev, insns, finish=finish).run()


def test_unknown_opcode(dev):
    expect(dev, [RawInsn(opcode=5)], UnknownOpcodeError,
           r"^unknown_opcode: instruction 0, compute module: opcode 5 is undefined")
    expect(dev, [AluInsn(alu_opcode=6)], UnknownOpcodeError, r"ALU opcode 6 is undefined \(valid: MIN, MAX")


def test_illegal_dep_flags(dev):
    expect(dev, [MemInsn(memory_type=MEM_INP, pop_prev_dep=1)], IllegalDepFlagError,
           r"^illegal_dep_flag: instruction 0, load module: LOAD INP/WGT .* pop_prev/push_prev must be 0")
    expect(dev, [MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, push_next_dep=1)], IllegalDepFlagError,
           r"store module: STORE runs on the store module")


def test_bad_memory_types(dev):
    expect(dev, [MemInsn(opcode=OP_STORE, memory_type=MEM_ACC, x_size=1, y_size=1)], BadMemoryTypeError,
           r"^bad_memory_type: instruction 0, store module: STORE with memory_type 3 \(ACC\); only OUT")
    expect(dev, [MemInsn(memory_type=MEM_OUT, x_size=1, y_size=1)], BadMemoryTypeError,
           r"LOAD with memory_type 4 \(OUT\); loadable")
    # with x_size == 0 the memory type is ignored: a STORE NOP of type UOP is fine (ordered before FINISH)
    program(dev, [GemmInsn(iter_out=0, push_next_dep=1),
                  MemInsn(opcode=OP_STORE, memory_type=MEM_UOP, pop_prev_dep=1, push_prev_dep=1),
                  GemmInsn(iter_out=0, pop_next_dep=1)]).run()


def test_malformed(dev):
    expect(dev, [MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, x_size=1, y_size=1, x_pad_0=1)],
           MalformedInsnError, r"STORE takes no padding, got y_pad_0=0, y_pad_1=0, x_pad_0=1, x_pad_1=0")
    expect(dev, [GemmInsn(uop_bgn=3, uop_end=1)], MalformedInsnError, r"uop_end 1 < uop_bgn 3")
    expect(dev, [MemInsn(memory_type=MEM_INP, x_size=4, y_size=2, x_stride=2)], MalformedInsnError,
           r"x_stride 2 < x_size 4 with y_size 2")


def test_sram_out_of_bounds(dev):
    expect(dev, [MemInsn(memory_type=MEM_UOP, sram_base=8190, x_size=4, y_size=1, x_stride=4, dram_base=1)],
           SramOutOfBoundsError, r"^sram_oob: instruction 0, compute module: LOAD UOP covers UOP entries 8190..8193")
    expect(dev, [acc_load(dev), load_uops(dev, [(2000, 0, 0)]),
                 GemmInsn(reset_reg=1, uop_end=1, iter_out=50, iter_in=1, dst_factor_out=1)],
           SramOutOfBoundsError, r"GEMM reset acc index 2048 \(micro-op 0, i_out 48, i_in 0\) is past the ACC depth")
    expect(dev, [acc_load(dev), load_uops(dev, [(0, 2047, 0)]),
                 AluInsn(alu_opcode=ALU_ADD, use_imm=1, uop_end=1, iter_out=2, src_factor_out=1)],
           SramOutOfBoundsError, r"ALU ADD src index 2048")
    expect(dev, [AluInsn(uop_bgn=8191, uop_end=8200)], SramOutOfBoundsError, r"covers UOP entries 8191..8199")
    st, _ = store(dev)
    expect(dev, [MemInsn(**{**st.values(), "sram_base": 2046})], SramOutOfBoundsError,
           r"STORE covers ACC entries 2046..2049")


def test_dram_out_of_bounds(dev):
    buf = dev.dram.alloc(4096)
    expect(dev, [MemInsn(memory_type=MEM_INP, dram_base=buf.phys_addr // 16 + 250, x_size=8, y_size=1, x_stride=8)],
           DramOutOfBoundsError, r"^dram_oob: instruction 0, load module: LOAD INP touches DRAM bytes 0x")
    expect(dev, [MemInsn(memory_type=MEM_UOP, dram_base=0, x_size=1, y_size=1, x_stride=1)], DramOutOfBoundsError,
           r"LOAD UOP touches DRAM bytes 0x0..0x3")
    with pytest.raises(DramOutOfBoundsError, match=r"fetching 3 instruction\(s\)"):
        dev.run(buf.phys_addr + 4096 - 16, 3)


def test_acc8bit_above_one_gib_is_refused():
    dev = SimDevice()
    buf = dev.dram.alloc_at(0x40000000, 4096)
    insn = MemInsn(memory_type=MEM_ACC_8BIT, dram_base=buf.phys_addr // 16, x_size=1, y_size=1, x_stride=1)
    expect(dev, [insn], DramOutOfBoundsError, r"ACC_8BIT addresses in 32 bits .* wraps at 1 GiB")


def test_acc8bit_sign_extends(dev):
    src = put(dev, np.arange(-8, 8, dtype=np.int8))
    insn = MemInsn(memory_type=MEM_ACC_8BIT, dram_base=src.phys_addr // 16, x_size=1, y_size=1, x_stride=1,
                   sram_base=5)
    r = program(dev, [insn]).run()
    assert dev.sram.acc[5, 0].tolist() == list(range(-8, 8)) and r.counters["acc_load_nbytes"] == 64


def test_deadlock_and_missing_finish(dev):
    expect(dev, [GemmInsn(pop_prev_dep=1)], DeadlockError,
           r"^deadlock: instruction 0, compute module: waits for a token on l2g \(load->compute\) that is never pushed")
    expect(dev, [MemInsn(memory_type=MEM_INP)], MissingFinishError, r"has no FINISH", finish=False)
    expect(dev, [GemmInsn(iter_out=0, push_next_dep=1)], DeadlockError,
           r"tokens left over after FINISH: 1 on g2s \(compute->store\)")


def test_early_finish(dev):
    st, _ = store(dev, pop_prev_dep=1)
    expect(dev, [acc_load(dev), load_uops(dev, [(0, 0, 0)]), shift0(push_next_dep=1), st], EarlyFinishError,
           r"instruction 3 \(store\) is not ordered before FINISH \(instruction 4\)")
    expect(dev, [MemInsn(memory_type=MEM_INP, pop_next_dep=1)], EarlyFinishError,
           r"FINISH \(instruction 1\) runs while instruction 0 \(load\) waits for a token on g2l")


def test_race_and_uninit(dev):
    st, _ = store(dev)
    expect(dev, [acc_load(dev), load_uops(dev, [(0, 0, 0)]), shift0(), st], RaceError,
           r"^race: instruction 3, store module: STORE reads ACC entries 0..3 written by instruction 2 \(compute\)")
    st, _ = store(dev, pop_prev_dep=1, push_prev_dep=1)
    expect(dev, [GemmInsn(reset_reg=0, iter_out=0, push_next_dep=1), st, AluInsn(pop_next_dep=1, iter_out=0)],
           UninitSramError, r"^uninit_sram: instruction 1, store module: STORE reads ACC entry 0, which nothing wrote")


def test_refused_run_leaves_dram_untouched(dev):
    insns, out = valid_store_program(dev)
    before = out.data.copy()
    # the same valid store, followed by a GEMM past the ACC depth: refused after the STORE executed
    bad = [*insns[:-1], load_uops(dev, [(2047, 0, 0)], sram_base=1, pop_next_dep=1),
           GemmInsn(reset_reg=1, uop_bgn=1, uop_end=2, iter_out=2, dst_factor_out=1)]
    with pytest.raises(SramOutOfBoundsError):
        program(dev, bad).run()
    assert np.array_equal(out.data, before)


def test_check_only_run_moves_no_data(dev):
    insns, out = valid_store_program(dev)
    before = out.data.copy()
    p = program(dev, insns)
    r = p.run(execute=False)
    assert not r.executed and np.array_equal(out.data, before) and r.counters["out_store_nbytes"] == 64
    assert p.run().replayed is False and p.run().replayed is True  # verified once, then replayed


def test_replay_is_invalidated_by_new_uops(dev):
    insns, _ = valid_store_program(dev)
    p = program(dev, insns)
    p.run()
    uop_buf = dev.dram.find(insns[1].dram_base * 4, 4)[0]
    uop_buf.view("<u4")[0] = 5  # dst 5: the ALU now reads ACC 5..8, which the program never loads
    with pytest.raises(UninitSramError, match=r"ALU reads ACC entry 5"):
        p.run()  # the changed micro-ops force a full re-check instead of a replay


dma_types = st.sampled_from([MEM_UOP, MEM_INP, MEM_WGT, MEM_ACC, MEM_ACC_8BIT])


@st.composite
def small_programs(draw):
    insns = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["load", "store", "gemm", "alu"]))
        flags = {k: draw(st.integers(0, 1)) for k in ("pop_prev_dep", "pop_next_dep", "push_prev_dep",
                                                       "push_next_dep")}
        if kind == "load":
            insns.append(MemInsn(memory_type=draw(dma_types), sram_base=draw(st.integers(0, 40)),
                                 dram_base=draw(st.integers(0, 300)), y_size=draw(st.integers(0, 3)),
                                 x_size=draw(st.integers(0, 4)), x_stride=draw(st.integers(0, 6)),
                                 x_pad_0=draw(st.integers(0, 2)), y_pad_1=draw(st.integers(0, 2)), **flags))
        elif kind == "store":
            insns.append(MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, sram_base=draw(st.integers(0, 40)),
                                 dram_base=draw(st.integers(0, 300)), y_size=draw(st.integers(0, 3)),
                                 x_size=draw(st.integers(0, 4)), x_stride=draw(st.integers(0, 6)), **flags))
        else:
            cls = GemmInsn if kind == "gemm" else AluInsn
            extra = {"alu_opcode": draw(st.integers(0, 4)), "use_imm": draw(st.integers(0, 1)),
                     "imm": draw(st.integers(-20, 20))} if kind == "alu" else {"reset_reg": draw(st.integers(0, 1))}
            insns.append(cls(uop_bgn=draw(st.integers(0, 3)), uop_end=draw(st.integers(0, 6)),
                             iter_out=draw(st.integers(0, 3)), iter_in=draw(st.integers(0, 3)),
                             dst_factor_out=draw(st.integers(0, 3)), src_factor_in=draw(st.integers(0, 3)),
                             **extra, **flags))
    return insns


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(small_programs(), st.booleans())
def test_fuzzed_programs_run_or_are_refused_cleanly(insns, finish):
    dev = SimDevice()
    data = dev.dram.alloc_at(4096, 8192)  # dram_base values above land in here or outside (dram_oob)
    data.data[:] = np.random.default_rng(1).integers(0, 256, 8192, dtype=np.uint8)
    data.data[:32] = 0  # a few zero uops
    before = data.data.copy()
    p = program(dev, insns, finish=finish)
    try:
        p.run()
    except ProgramError as e:
        assert e.error_class in str(e)
        assert np.array_equal(data.data, before), "a refused program changed DRAM"


def test_carry_sram_accepts_only_what_an_earlier_run_wrote(dev):
    insns, out = valid_store_program(dev)
    program(dev, insns).run()
    # a second program stores ACC 0..3 without loading them: refused by default, accepted when carried over
    st, out2 = store(dev, pop_prev_dep=1, push_prev_dep=1)
    again = [GemmInsn(iter_out=0, push_next_dep=1), st, GemmInsn(iter_out=0, pop_next_dep=1)]
    with pytest.raises(UninitSramError, match=r"STORE reads ACC entry 0"):
        program(dev, again).run()
    program(dev, again).run(carry_sram=True)
    assert np.array_equal(out2.data, out.data)
    # entries no run ever wrote stay refused even with carry_sram
    st, _ = store(dev, pop_prev_dep=1, push_prev_dep=1)
    far = [GemmInsn(iter_out=0, push_next_dep=1), MemInsn(**{**st.values(), "sram_base": 100}),
           GemmInsn(iter_out=0, pop_next_dep=1)]
    with pytest.raises(UninitSramError, match=r"STORE reads ACC entry 100"):
        program(dev, far).run(carry_sram=True)
