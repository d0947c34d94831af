import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_config import PYNQ
from vta.config import Environment
from vta.errors import EncodingError
from vta.isa import (
    ALU_SHR,
    MEM_INP,
    AluInsn,
    DecodedStream,
    FinishInsn,
    GemmInsn,
    MemInsn,
    RawInsn,
    Uop,
    decode_insn,
    encode_stream,
    get_isa,
)


def hexwords(data: bytes) -> str:
    return data[8:][::-1].hex() + " " + data[:8][::-1].hex()


def test_spec_2_9_vectors():
    load = MemInsn(memory_type=MEM_INP, pop_next_dep=1, sram_base=5, dram_base=0x1234, y_size=3, x_size=4,
                   x_stride=16, y_pad_0=1, y_pad_1=2, x_pad_0=3, x_pad_1=4)
    assert hexwords(load.encode()) == "4321001000040003 00000048d0001510"
    gemm = GemmInsn(pop_prev_dep=1, push_next_dep=1, reset_reg=1, uop_bgn=7, uop_end=9, iter_out=3, iter_in=5,
                    dst_factor_out=11, dst_factor_in=13, src_factor_out=17, src_factor_in=19, wgt_factor_out=23,
                    wgt_factor_in=29)
    assert hexwords(gemm.encode()) == "074170260440680b 000a0018012007ca"
    alu = AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=-8, uop_bgn=1, uop_end=2, iter_out=1, iter_in=16,
                  dst_factor_in=1, src_factor_in=1)
    assert hexwords(alu.encode()) == "fff8b00200000800 0020000800400104"
    assert Uop(5, 6, 7).encode() == 0x01C03005
    assert hexwords(FinishInsn().encode()) == "0000000000000000 0000000000000003"
    for insn in (load, gemm, alu, FinishInsn()):
        assert decode_insn(insn.encode()) == insn


def test_hw_ver_001_layout_moves_fields():
    env = Environment.from_dict({**PYNQ, "HW_VER": "0.0.1"})
    isa = get_isa(env)
    mem = {f.name: f for f in isa.mem.fields}
    alu = {f.name: f for f in isa.alu.fields}
    assert (mem["memory_type"].lo, mem["sram_base"].lo, mem["dram_base"].lo, mem["y_size"].lo) == (7, 9, 25, 64)
    assert (alu["alu_opcode"].lo, alu["use_imm"].lo, alu["imm"].lo) == (108, 110, 111)
    # 0.0.1 has no MUL: a 3-bit ALU opcode does not fit
    with pytest.raises(EncodingError, match=r"^ALU.alu_opcode=4 does not fit its 2-bit unsigned field"):
        AluInsn(alu_opcode=4).encode(env)


def test_fields_that_do_not_fit_are_named():
    with pytest.raises(EncodingError, match=r"^LOAD/STORE.sram_base=65536 does not fit its 16-bit unsigned field"):
        MemInsn(sram_base=1 << 16).encode()
    with pytest.raises(EncodingError, match=r"^ALU.imm=32768 does not fit its 16-bit signed field \(range -32768"):
        AluInsn(imm=32768).encode()
    with pytest.raises(EncodingError, match=r"^GEMM.uop_bgn=-1 does not fit"):
        GemmInsn(uop_bgn=-1).encode()
    with pytest.raises(EncodingError, match=r"^UOP\[1\].dst_idx=2048 does not fit its 11-bit"):
        get_isa().encode_uops(np.array([0, 2048]), np.array([0, 0]), np.array([0, 0]))
    with pytest.raises(EncodingError, match=r"expected an integer, got 1.5"):
        MemInsn(x_size=1.5).encode()


def test_unknown_opcode_decodes_as_raw():
    raw = (6 | (1 << 4)).to_bytes(16, "little")
    insn = decode_insn(raw)
    assert isinstance(insn, RawInsn) and insn.opcode == 6 and insn.pop_next_dep == 1
    assert insn.encode() == raw


mem_st = st.builds(MemInsn, opcode=st.sampled_from([0, 1]), memory_type=st.integers(0, 7),
                   sram_base=st.integers(0, 65535), dram_base=st.integers(0, 2**32 - 1),
                   y_size=st.integers(0, 65535), x_size=st.integers(0, 65535), x_stride=st.integers(0, 65535),
                   y_pad_0=st.integers(0, 15), x_pad_1=st.integers(0, 15), pop_next_dep=st.integers(0, 1))
gemm_st = st.builds(GemmInsn, reset_reg=st.integers(0, 1), uop_bgn=st.integers(0, 8191),
                    uop_end=st.integers(0, 16383), iter_out=st.integers(0, 16383), iter_in=st.integers(0, 16383),
                    dst_factor_out=st.integers(0, 2047), wgt_factor_in=st.integers(0, 1023),
                    push_prev_dep=st.integers(0, 1))
alu_st = st.builds(AluInsn, alu_opcode=st.integers(0, 7), use_imm=st.integers(0, 1),
                   imm=st.integers(-32768, 32767), src_factor_in=st.integers(0, 2047),
                   dst_factor_out=st.integers(0, 2047), iter_in=st.integers(0, 16383))


@given(st.lists(st.one_of(mem_st, gemm_st, alu_st), min_size=1, max_size=20))
def test_round_trip_and_stream_decode(insns):
    data = encode_stream(insns)
    s = DecodedStream(data)
    for i, insn in enumerate(insns):
        assert decode_insn(data[16 * i:16 * i + 16]) == insn
        assert s.insn(i) == insn
        layout = s.mem if isinstance(insn, MemInsn) else s.alu if isinstance(insn, AluInsn) else s.gemm
        for name, value in insn.values().items():
            assert layout[name][i] == value


@given(st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 2047), st.integers(0, 1023)), min_size=1))
def test_uop_round_trip(uops):
    a = np.array(uops)
    words = get_isa().encode_uops(a[:, 0], a[:, 1], a[:, 2])
    dst, src, wgt = get_isa().decode_uops(words)
    assert (dst == a[:, 0]).all() and (src == a[:, 1]).all() and (wgt == a[:, 2]).all()
    assert Uop.decode(int(words[0])) == Uop(*uops[0])


def test_stream_length_must_be_whole_instructions():
    with pytest.raises(EncodingError, match=r"multiple of 16 bytes, got 17"):
        DecodedStream(bytes(17))
