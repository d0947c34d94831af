"""GEMM and ALU kernels against the plain loop nests, through whole programs on the device."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim import reference
from tests.sim.programs import load_uops, program, put
from vta.errors import ConfigError, ProgramError, SimLimitError, SramOutOfBoundsError
from vta.isa import ALU_ADD, ALU_MAX, ALU_MIN, ALU_MUL, ALU_SHR, MEM_ACC, MEM_INP, MEM_WGT, AluInsn, GemmInsn, MemInsn
from vta.sim import compute
from vta.sim.compute import SERIAL_SHIFT, _first_oob
from vta.sim.device import SimDevice

RNG = np.random.default_rng(7)


def fill(dev, mt, n, sram_base=0, values=None, push=False):
    """LOAD n random entries of a memory type into SRAM; returns the instruction and the data."""
    env = dev.env
    shape = {MEM_INP: (n, env.BATCH, env.BLOCK_IN), MEM_WGT: (n, env.BLOCK_OUT, env.BLOCK_IN),
             MEM_ACC: (n, env.BATCH, env.BLOCK_OUT)}[mt]
    if values is None:
        values = RNG.integers(-128, 128, shape, dtype=np.int8) if mt != MEM_ACC else \
            RNG.integers(-2**31, 2**31, shape, dtype=np.int64).astype(np.int32)
    buf = put(dev, values)
    elem = values.nbytes // n
    insn = MemInsn(memory_type=mt, sram_base=sram_base, dram_base=buf.phys_addr // elem, y_size=1, x_size=n,
                   x_stride=n, push_next_dep=int(push))
    return insn, values


def gemm_case(dev, uops, f, n_inp=64, n_wgt=32, n_acc=128):
    ld_inp, inp = fill(dev, MEM_INP, n_inp)
    ld_wgt, wgt = fill(dev, MEM_WGT, n_wgt, push=True)
    ld_acc, acc = fill(dev, MEM_ACC, n_acc)
    insns = [ld_inp, ld_wgt, ld_acc, load_uops(dev, uops),
             GemmInsn(pop_prev_dep=1, uop_bgn=0, uop_end=len(uops), **f)]
    program(dev, insns).run()
    return dev.sram.acc[:n_acc], reference.gemm(acc, inp, wgt, uops, f)


def test_conv_like_gemm_uses_blas_groups(dev):
    # 3 kernel rows x 4 output rows, loops over 8 output columns and 3 kernel columns: every acc entry
    # receives 9 taps, the im2col shape the plan turns into batched matrix products.
    uops = [(r * 8, (r + kh) * 10, kh) for kh in range(3) for r in range(4)]
    f = dict(iter_out=8, iter_in=3, dst_factor_out=1, dst_factor_in=0, src_factor_out=1, src_factor_in=1,
             wgt_factor_out=0, wgt_factor_in=3)
    got, want = gemm_case(dev, uops, f)
    np.testing.assert_array_equal(got, want)
    plan = next(iter(dev.plans._plans.values()))
    assert plan.groups and plan.scatter is None


def test_uneven_gemm_takes_scatter_path(dev):
    uops = [(0, 1, 2), (0, 3, 4), (5, 6, 7)]  # acc 0 gets two terms, acc 5 one
    f = dict(iter_out=2, iter_in=2, dst_factor_out=7, dst_factor_in=1, src_factor_out=2, src_factor_in=3,
             wgt_factor_out=1, wgt_factor_in=2)
    got, want = gemm_case(dev, uops, f)
    np.testing.assert_array_equal(got, want)
    assert next(iter(dev.plans._plans.values())).scatter is not None


def test_long_reduction_stays_exact(dev):
    # 100 terms per accumulator (more than float32 keeps exact in one sum) with extreme values
    uops = [(0, k % 64, k % 32) for k in range(100)]
    values = np.full((64, 1, 16), -128, dtype=np.int8)
    dev2 = SimDevice(dev.env)
    ld_inp, inp = fill(dev2, MEM_INP, 64, values=values)
    ld_wgt, wgt = fill(dev2, MEM_WGT, 32, values=np.full((32, 16, 16), -128, dtype=np.int8), push=True)
    ld_acc, acc = fill(dev2, MEM_ACC, 4)
    f = dict(iter_out=1, iter_in=1)
    program(dev2, [ld_inp, ld_wgt, ld_acc, load_uops(dev2, uops), GemmInsn(pop_prev_dep=1, uop_end=100, **f)]).run()
    full = dict(f, dst_factor_out=0, dst_factor_in=0, src_factor_out=0, src_factor_in=0, wgt_factor_out=0,
                wgt_factor_in=0)
    np.testing.assert_array_equal(dev2.sram.acc[:4], reference.gemm(acc, inp, wgt, uops, full))


def test_reset_gemm_zeroes(dev):
    uops = [(3, 0, 0), (9, 0, 0)]
    f = dict(iter_out=2, iter_in=1, dst_factor_out=1, reset_reg=1)
    got, want = gemm_case(dev, uops, f)
    np.testing.assert_array_equal(got, want)
    assert (got[[3, 4, 9, 10]] == 0).all() and dev.counters["gemm_counter"] == 0


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_random_gemm_matches_loops(data):
    dev = SimDevice()
    nu = data.draw(st.integers(1, 6))
    uops = [(data.draw(st.integers(0, 40)), data.draw(st.integers(0, 30)), data.draw(st.integers(0, 15)))
            for _ in range(nu)]
    f = {k: data.draw(st.integers(0, 4)) for k in ("dst_factor_out", "dst_factor_in", "src_factor_out",
                                                      "src_factor_in", "wgt_factor_out", "wgt_factor_in")}
    f.update(iter_out=data.draw(st.integers(0, 4)), iter_in=data.draw(st.integers(0, 4)))
    got, want = gemm_case(dev, uops, f, n_inp=64, n_wgt=48, n_acc=128)  # indices reach 63, 39, 64
    np.testing.assert_array_equal(got, want)


def alu_case(dev, uops, f, n_acc=64, values=None):
    ld_acc, acc = fill(dev, MEM_ACC, n_acc, values=values)
    program(dev, [ld_acc, load_uops(dev, uops), AluInsn(uop_bgn=0, uop_end=len(uops), **f)]).run()
    return dev.sram.acc[:n_acc], reference.alu(acc, uops, f)


@pytest.mark.parametrize("op", [ALU_MIN, ALU_MAX, ALU_ADD, ALU_SHR, ALU_MUL])
@pytest.mark.parametrize("use_imm,imm", [(0, 0), (1, -7), (1, 13), (1, -32768), (1, 32767)])
def test_alu_ops(dev, op, use_imm, imm):
    values = None
    if op == ALU_SHR and not use_imm:
        values = RNG.integers(-40, 40, (64, 1, 16)).astype(np.int32)  # shift amounts, incl. |b| >= 32
    uops = [(i, 32 + i, 0) for i in range(4)]
    f = dict(alu_opcode=op, use_imm=use_imm, imm=imm, iter_out=2, iter_in=3, dst_factor_out=4, dst_factor_in=8,
             src_factor_out=4, src_factor_in=8)
    got, want = alu_case(dev, uops, f, values=values)
    np.testing.assert_array_equal(got, want)


def test_alu_dependent_chain_runs_in_order(dev):
    # each tuple reads the entry the previous one wrote: a running sum over 10 steps
    uops = [(1, 0, 0)]
    f = dict(alu_opcode=ALU_ADD, use_imm=0, imm=0, iter_out=1, iter_in=10, dst_factor_in=1, src_factor_in=1)
    got, want = alu_case(dev, uops, f, n_acc=16)
    np.testing.assert_array_equal(got, want)


def test_alu_repeated_destination(dev):
    uops = [(2, 5, 0), (2, 6, 0)]
    f = dict(alu_opcode=ALU_ADD, use_imm=0, imm=0, iter_out=3, iter_in=1)
    got, want = alu_case(dev, uops, f, n_acc=16)
    np.testing.assert_array_equal(got, want)


def test_counters_follow_reference_rules(dev):
    uops = [(0, 0, 0), (1, 1, 1)]
    gemm_case(dev, uops, dict(iter_out=3, iter_in=2))
    c = dev.counters
    assert c["gemm_counter"] == 3 * 2 * 2
    assert c["inp_load_nbytes"] == 64 * 16 and c["wgt_load_nbytes"] == 32 * 256 and c["acc_load_nbytes"] == 128 * 64
    assert c["uop_load_nbytes"] == 2 * 4


# --- instructions too large to plan: refused before allocating -------------------------------------

FUZZ_SHAPE = dict(iter_out=14499, iter_in=16285)  # with 6056 micro-ops: the MemoryError found by fuzzing
FUZZ_UOPS = 6056


def huge_program(dev, insn):
    """LOAD UOP of FUZZ_UOPS zero micro-ops (every index in bounds), then ``insn`` over them."""
    return program(dev, [load_uops(dev, [(0, 0, 0)] * FUZZ_UOPS), insn])


@pytest.mark.parametrize("insn,what", [
    (GemmInsn(uop_bgn=0, uop_end=FUZZ_UOPS, **FUZZ_SHAPE), "GEMM"),
    (GemmInsn(reset_reg=1, uop_bgn=0, uop_end=FUZZ_UOPS, **FUZZ_SHAPE), "GEMM reset"),
    (AluInsn(uop_bgn=0, uop_end=FUZZ_UOPS, alu_opcode=ALU_ADD, **FUZZ_SHAPE), "ALU ADD"),
])
def test_fuzzed_huge_instruction_is_refused_before_allocating(dev, insn, what):
    p = huge_program(dev, insn)
    before = {b.phys_addr: b.data.copy() for b in dev.dram._blocks}
    tracemalloc.start()
    try:
        with pytest.raises(SimLimitError, match=(
                rf"^sim_limit: instruction 1, compute module: {what} runs 14499 x 16285 x 6056 = 1,429,919,798,040 "
                r"micro-op iterations, more than the simulator's limit of 1,048,576 per instruction \(the hardware "
                r"would run it; the simulator needs memory in proportion\); set VTA_SIM_MAX_UOP_ITERATIONS to "
                r"raise the limit$")) as e:
            p.run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(e.value, ProgramError) and e.value.index == 1
    assert peak < 8 << 20, f"refusing allocated {peak} bytes"
    assert all(np.array_equal(b.data, before[b.phys_addr]) for b in dev.dram._blocks)


def test_huge_out_of_bounds_instruction_still_reports_the_first_bad_index(dev):
    p = huge_program(dev, GemmInsn(uop_bgn=0, uop_end=FUZZ_UOPS, dst_factor_out=1, **FUZZ_SHAPE))
    with pytest.raises(SramOutOfBoundsError, match=(
            r"^sram_oob: instruction 1, compute module: GEMM acc index 2048 \(micro-op 0, i_out 2048, i_in 0\) "
            r"is past the ACC depth 2048$")):
        p.run()


def test_iteration_limit_is_configurable(monkeypatch):
    monkeypatch.setenv("VTA_SIM_MAX_UOP_ITERATIONS", "12")
    dev = SimDevice()
    assert dev.plans.max_iterations == 12
    ok = dict(iter_out=2, iter_in=3)  # with 2 micro-ops: 12 iterations
    got, want = gemm_case(dev, [(0, 1, 2), (3, 4, 5)], ok)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(SimLimitError, match=r"GEMM runs 2 x 4 x 2 = 16 micro-op iterations, more than the "
                                            r"simulator's limit of 12 per instruction"):
        gemm_case(SimDevice(), [(0, 1, 2), (3, 4, 5)], {**ok, "iter_in": 4})
    monkeypatch.setenv("VTA_SIM_MAX_UOP_ITERATIONS", "lots")
    with pytest.raises(ConfigError, match=r"^VTA_SIM_MAX_UOP_ITERATIONS must be a positive integer, got 'lots'$"):
        SimDevice()


@settings(max_examples=300, deadline=None)
@given(base=st.lists(st.integers(0, 40), min_size=1, max_size=5), fo=st.integers(0, 9), fi=st.integers(0, 9),
       n_out=st.integers(1, 6), n_in=st.integers(1, 6), depth=st.integers(1, 80))
def test_first_out_of_bounds_tuple_matches_enumeration(base, fo, fi, n_out, n_in, depth):
    b = np.array(base, dtype=np.int64)
    idx = (b[None, None, :] + np.arange(n_out)[:, None, None] * fo + np.arange(n_in)[None, :, None] * fi).ravel()
    bad = np.flatnonzero(idx >= depth)
    want = None if not len(bad) else (int(bad[0]) // (n_in * len(b)), int(bad[0]) // len(b) % n_in,
                                      int(bad[0]) % len(b))
    assert _first_oob(b, fo, fi, n_out, n_in, depth) == want


# --- ALU instructions with many dependent steps: folded when the updates commute, else bounded ------

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_alu_with_repeated_destinations_matches_loops(data):
    dev = SimDevice()
    op, use_imm = data.draw(st.sampled_from([ALU_MIN, ALU_MAX, ALU_ADD, ALU_SHR, ALU_MUL])), data.draw(st.booleans())
    src_lo = data.draw(st.sampled_from([0, 8]))  # 8: sources the instruction never writes (foldable)
    uops = [(data.draw(st.integers(0, 3)), src_lo + data.draw(st.integers(0, 7)), 0)
            for _ in range(data.draw(st.integers(1, 4)))]
    f = dict(alu_opcode=op, use_imm=int(use_imm), imm=data.draw(st.integers(-40, 40)),
             iter_out=data.draw(st.integers(1, 4)), iter_in=data.draw(st.integers(1, 4)),
             dst_factor_out=data.draw(st.integers(0, 1)), src_factor_in=data.draw(st.integers(0, 1)))
    values = RNG.integers(-40, 40, (32, 1, 16)).astype(np.int32) if op in (ALU_SHR, ALU_MUL) else None
    got, want = alu_case(dev, uops, f, n_acc=32, values=values)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("use_imm,src", [(1, 0), (0, 9)])
def test_long_commuting_alu_is_folded_and_exact(dev, use_imm, src):
    f = dict(alu_opcode=ALU_ADD, use_imm=use_imm, imm=3, iter_out=50, iter_in=20)  # 1000 updates of entry 0
    got, want = alu_case(dev, [(0, src, 0)], f, n_acc=16)
    np.testing.assert_array_equal(got, want)
    plan = next(p for p in dev.plans._plans.values() if hasattr(p, "fold"))
    assert plan.fold and "chunks" not in plan.__dict__  # executed without building 1000 runs


def test_folded_plan_runs_under_pynq_fidelity(dev):
    ld_acc, acc = fill(dev, MEM_ACC, 16)
    f = dict(alu_opcode=ALU_MAX, use_imm=1, imm=5, iter_out=3, iter_in=4)
    program(dev, [ld_acc, load_uops(dev, [(0, 0, 0), (1, 1, 0)]),
                  AluInsn(uop_bgn=0, uop_end=2, **f)]).run(fidelity="pynq")
    np.testing.assert_array_equal(dev.sram.acc[:16], reference.alu(acc, [(0, 0, 0), (1, 1, 0)], f))
    plan = next(p for p in dev.plans._plans.values() if hasattr(p, "fold"))
    assert plan.fold and len(plan.chunks) == 12  # the bitstream model walks the runs, built on demand


def test_dependent_chain_longer_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setenv("VTA_SIM_MAX_UOP_ITERATIONS", str(10 << SERIAL_SHIFT))  # 10 dependent steps
    chain = dict(alu_opcode=ALU_ADD, use_imm=0, imm=0, iter_out=1, dst_factor_in=1, src_factor_in=1)
    got, want = alu_case(SimDevice(), [(1, 0, 0)], {**chain, "iter_in": 10}, n_acc=16)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(SimLimitError, match=r"^sim_limit: instruction 2, compute module: ALU ADD is a chain of more "
                                            r"than 10 dependent steps \(each reads an entry an earlier micro-op "
                                            r"iteration wrote\), the simulator's limit per instruction "
                                            r"\(VTA_SIM_MAX_UOP_ITERATIONS / 16\); set VTA_SIM_MAX_UOP_ITERATIONS "
                                            r"to raise the limit$"):
        alu_case(SimDevice(), [(1, 0, 0)], {**chain, "iter_in": 11}, n_acc=16)


def test_uneven_gemm_in_several_scatter_blocks(dev, monkeypatch):
    monkeypatch.setattr(compute, "SCATTER_BLOCK", 2)
    uops = [(0, 1, 2), (0, 3, 4), (5, 6, 7)]
    f = dict(iter_out=3, iter_in=2, dst_factor_out=7, dst_factor_in=1, src_factor_out=2, src_factor_in=3,
             wgt_factor_out=1, wgt_factor_in=2)
    got, want = gemm_case(dev, uops, f)
    np.testing.assert_array_equal(got, want)
    assert next(iter(dev.plans._plans.values())).scatter is not None
