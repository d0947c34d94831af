"""hw_exec: the bitstream's data semantics (8-bit output shadow and friends) next to the reference."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.programs import load_uops, program, put, uop_words
from tests.sim.test_device import acc_load, shift0, store
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
from vta.sim.lint import KINDS, lint_vector
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


def _stale_uop_program(dev, one_d: bool = False):
    """A 2-D LOAD UOP (y_size 2, x_size 1) whose second micro-op only the reference loads, then an ALU using it.

    The reference's micro-ops select ACC entries 4 and 5, which the STORE of entries 0..3 never reads; on the
    bitstream the second micro-op is the SRAM's old zero and selects entry 0, which the STORE reads with no
    token between them. ``one_d`` loads the same two micro-ops with one 1-D LOAD instead, as the runtime does.
    """
    words = put(dev, uop_words(dev, [(4, 4, 0), (5, 5, 0)]))
    shape = dict(y_size=1, x_size=2, x_stride=2) if one_d else dict(y_size=2, x_size=1, x_stride=1)
    uop2d = MemInsn(memory_type=MEM_UOP, dram_base=words.phys_addr // 4, sram_base=10, **shape)
    alu = AluInsn(alu_opcode=ALU_ADD, use_imm=1, imm=1, uop_bgn=10, uop_end=12)
    st, out = store(dev, pop_prev_dep=1, push_prev_dep=1)
    insns = [acc_load(dev, 8), load_uops(dev, [(0, 0, 0)]), shift0(push_next_dep=1), st, uop2d, alu]
    return program(dev, [*insns, AluInsn(pop_next_dep=1, iter_out=0)]), out


def test_hw_exec_race_from_an_unloaded_micro_op_says_it_is_the_bitstreams(dev):
    _stale_uop_program(SimDevice())[0].run()  # the reference semantics: no race, whatever the interleaving
    p, out = _stale_uop_program(dev)
    before = out.data.copy()
    with pytest.raises(RaceError, match=r"^race: instruction 3, store module: on the Pynq bitstream STORE reads ACC "
                                        r"entries 0\.\.3 written by instruction 5 \(compute\) with no dependency token "
                                        r"ordering the two, so what the bitstream computes depends on timing; the "
                                        r"reference execution has no such race: LOAD UOP instruction 4 writes "
                                        r"micro-op 11 in the reference but not on the bitstream, which copies only "
                                        r"x_size micro-ops; instruction 5 runs it, and on the bitstream it holds "
                                        r"whatever the micro-op SRAM held before the run \(what earlier programs left; "
                                        r"zero on a fresh simulated device\), so the instruction touches other entries "
                                        r"than in the reference$"):
        p.run(fidelity="pynq", hw_exec=True)
    assert np.array_equal(out.data, before)


def test_micro_ops_an_earlier_run_left_are_what_the_bitstream_runs(dev):
    p, _ = _stale_uop_program(dev)
    p.run()  # leaves micro-op 11 = (5, 5, 0) in the micro-op SRAM, as a board keeps it
    run = p.run(fidelity="pynq", hw_exec=True)
    found = [d for d in run.divergences if d.kind == "uop_unloaded"]
    assert [(d.index, d.message) for d in found] == [
        (5, KINDS["uop_unloaded"] + " (micro-op 11, left out by LOAD UOP instruction 4)")]


def test_one_d_micro_op_load_runs_on_the_bitstream_as_in_the_reference(dev):
    p, out = _stale_uop_program(dev, one_d=True)
    run = p.run(fidelity="pynq", hw_exec=True)
    assert "uop_unloaded" not in {d.kind for d in run.divergences}
    assert np.array_equal(out.data.view(np.int8)[:64], np.arange(64, dtype=np.int8))


def test_rand_008_hw_exec_refusal_names_the_micro_op_the_bitstream_never_loaded(vectors_dir):
    run = lint_vector(load_vector(vectors_dir / "random" / "rand_008"), hw_exec=True)
    assert isinstance(run.error, RaceError)
    assert str(run.error).startswith("race: instruction 24, compute module: on the Pynq bitstream ALU overwrites ACC "
                                     "entries 0..67 (20 entries) that instruction 21 (store) reads, with no dependency "
                                     "token ordering the two, so what the bitstream computes depends on timing; the "
                                     "reference execution has no such race: LOAD UOP instruction 23 writes micro-op "
                                     "7181 in the reference but not on the bitstream")
    assert lint_vector(load_vector(vectors_dir / "random" / "rand_008")).error is None


def test_cli_hw_exec_refusal_of_rand_008_says_the_race_is_the_bitstreams(vectors_dir, capsys):
    from vta.cli import main

    d = str(vectors_dir / "random" / "rand_008")
    assert main(["sim", "run-vector", d, "--fidelity", "pynq", "--hw-exec"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused: race: instruction 24, compute module: on the Pynq bitstream ALU overwrites ACC "
                          "entries 0..67 (20 entries) that instruction 21 (store) reads, with no dependency token "
                          "ordering the two, so what the bitstream computes depends on timing; the reference "
                          "execution has no such race: LOAD UOP instruction 23 writes micro-op 7181 in the "
                          "reference but not on the bitstream")
    assert main(["sim", "run-vector", d]) == 0  # the reference execution matches the golden files
