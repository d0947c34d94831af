"""The pynq divergence lint: every construct of spec §3.11/§2.7 is reported, clean programs stay clean."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.programs import load_uops, program, put
from tests.sim.test_device import acc_load, shift0, store
from vta.errors import ConfigError
from vta.isa import (
    ALU_MUL,
    ALU_SHR,
    MEM_ACC_8BIT,
    MEM_UOP,
    MEM_WGT,
    AluInsn,
    FinishInsn,
    GemmInsn,
    MemInsn,
    encode_stream,
)
from vta.sim.lint import KINDS, lint_vector, static_divergences
from vta.sim.perf import PYNQ_Z1
from vta.sim.vector import load_vector


def kinds(run) -> list[tuple[int, str]]:
    return [(d.index, d.kind) for d in run.divergences]


def stored(dev, before, **flags):
    """``before`` (compute instructions), then a STORE of ACC 0..3 and the compute NOP that pops its token."""
    st, out = store(dev, pop_prev_dep=1, push_prev_dep=1)
    return program(dev, [*before, st, AluInsn(pop_next_dep=1, iter_out=0)]), out


def test_store_after_load_acc_is_reported_and_shr0_fixes_it(dev):
    p, _ = stored(dev, [acc_load(dev), GemmInsn(iter_out=0, push_next_dep=1)])
    run = p.run(fidelity="pynq")
    assert kinds(run) == [(2, "store_unshadowed")]
    assert run.divergences[0].module == "store"
    assert "entry 0 was last written by LOAD ACC, instruction 0; 4 such entries" in run.divergences[0].message
    p, _ = stored(dev, [acc_load(dev), load_uops(dev, [(0, 0, 0)]), shift0(push_next_dep=1)])
    assert p.run(fidelity="pynq").divergences == ()  # the SHR 0 of test_save_load_out


def test_store_after_reset_gemm_is_reported(dev):
    uops = load_uops(dev, [(0, 0, 0)])
    p, _ = stored(dev, [uops, GemmInsn(reset_reg=1, uop_end=1, iter_out=4, dst_factor_out=1, push_next_dep=1)])
    run = p.run(fidelity="pynq")
    assert kinds(run) == [(2, "store_unshadowed")]
    assert "last written by a reset GEMM, instruction 1" in run.divergences[0].message


def test_static_constructs_are_reported_per_instruction(env):
    insns = [AluInsn(alu_opcode=ALU_MUL, uop_end=1),
             AluInsn(alu_opcode=ALU_MUL, iter_out=0),  # never executes: nothing differs
             MemInsn(memory_type=MEM_ACC_8BIT, y_size=1, x_size=2, x_stride=2),
             MemInsn(memory_type=MEM_WGT, y_size=1, x_size=2, x_stride=2, x_pad_0=1),
             MemInsn(memory_type=MEM_WGT, y_size=2, x_size=2, x_stride=2),
             MemInsn(memory_type=MEM_UOP, y_size=2, x_size=2, x_stride=4),
             MemInsn(memory_type=MEM_UOP, y_size=1, x_size=2, x_stride=2),
             AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=16, uop_end=1),
             AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=-15, uop_end=1),
             AluInsn(alu_opcode=ALU_SHR, use_imm=1, imm=-16, uop_end=1)]
    from vta.isa import DecodedStream

    found = static_divergences(DecodedStream(encode_stream(insns, env), env))
    assert [(d.index, d.kind) for d in found] == [
        (0, "alu_mul"), (2, "acc_8bit"), (3, "wgt_pad"), (5, "uop_2d"), (7, "shift_range"), (9, "shift_range")]
    assert found[4].message == KINDS["shift_range"] + " (immediate 16)"
    assert [d.module for d in found[:3]] == ["compute", "compute", "load"]


def test_two_operand_shift_amounts_are_checked_on_the_data(dev):
    buf = put(dev, np.repeat(np.array([1, 20, 3, -7], dtype=np.int32), 16))
    ld = MemInsn(memory_type=3, dram_base=buf.phys_addr // 64, y_size=1, x_size=4, x_stride=4)
    shr = AluInsn(alu_opcode=ALU_SHR, uop_end=1, iter_out=1)  # ACC[0] >>= ACC[src]
    uops = load_uops(dev, [(0, 1, 0)])
    run = program(dev, [ld, uops, shr]).run(fidelity="pynq")
    assert kinds(run) == [(2, "shift_range")]
    assert run.divergences[0].message.endswith("(amount 20 read from ACC)")
    run = program(dev, [ld, load_uops(dev, [(0, 3, 0)]), shr]).run(fidelity="pynq")
    assert run.divergences == ()


def test_fetch_hang_is_a_divergence(dev):
    n = PYNQ_Z1.cmd_queue_depth + 10
    insns = [MemInsn(x_size=0, pop_next_dep=1)] * n + [GemmInsn(iter_out=0, push_prev_dep=1)] * n
    insns += [MemInsn(x_size=0, push_next_dep=1), FinishInsn(pop_prev_dep=1)]
    run = program(dev, insns, finish=False).run(fidelity="pynq")  # the reference runs it
    assert kinds(run) == [(0, "fetch_hang")]


def test_reference_mode_reports_nothing_and_bad_modes_are_refused(dev):
    p = program(dev, [AluInsn(alu_opcode=ALU_MUL, uop_end=1, iter_out=0)])
    assert p.run().divergences == ()
    with pytest.raises(ConfigError, match=r"^fidelity must be 'reference' or 'pynq' \(hw_exec needs 'pynq'\), "
                                          r"got 'hls' with hw_exec=False$"):
        p.run(fidelity="hls")
    with pytest.raises(ConfigError, match=r"got 'reference' with hw_exec=True$"):
        p.run(hw_exec=True)


def test_conv_vectors_lint_clean(vectors_dir):
    for path in sorted((vectors_dir / "conv").iterdir()):
        run = lint_vector(load_vector(path))
        assert run.error is None and run.result.divergences == (), path.name


def test_random_vectors_with_hardware_only_features_are_flagged(vectors_dir):
    v = load_vector(vectors_dir / "random" / "rand_001")
    run = lint_vector(v)
    assert [d.kind for d in run.result.divergences] == ["gemm_pipeline", "gemm_pipeline", "shift_range", "shift_range"]
    assert run.result.divergences[0].message == KINDS["gemm_pipeline"] + (" (micro-op execution 1 writes entry 326, "
                                                                          "written 1 before)")
    assert np.array_equal(run.mem, v.mem_out)  # lint alone executes with the reference semantics
