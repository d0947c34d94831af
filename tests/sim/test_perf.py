"""The cycle model: per-instruction costs from the constants, overlap, bounds, scaling, queue limits."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tests.sim.programs import load_uops, program, put
from vta.errors import ConfigError, DeadlockError, MissingFinishError
from vta.isa import (
    ALU_ADD,
    MEM_INP,
    MEM_OUT,
    MEM_WGT,
    OP_LOAD,
    OP_STORE,
    AluInsn,
    FinishInsn,
    GemmInsn,
    MemInsn,
    encode_stream,
)
from vta.sim.events import _Bus
from vta.sim.perf import PYNQ_Z1, HwTiming, concatenate, estimate
from vta.sim.trace import busy_overlap

HW = PYNQ_Z1
BUS = 8  # 64-bit AXI on Pynq (spec §1.3)
READ = HW.read_bytes_per_cycle or BUS  # sustained bytes per cycle of one load burst (calibrated)


def gemm_cycles(uops: int) -> int:
    return HW.insn_overhead + HW.gemm_fill + uops * HW.gemm_ii


def load_cycles(y: int, x: int, elem: int, pad_entries: int = 0) -> int:
    return HW.insn_overhead + HW.dma_setup + y * (HW.axi_read_latency + math.ceil(x * elem / READ)) + pad_entries


def first_start() -> int:
    return HW.fetch_overhead + 16 // BUS  # the first instruction is in its queue after one fetch


def dur(t, i: int) -> int:
    return int(t.end[i] - t.start[i])


def test_instruction_costs_follow_the_constants():
    insns = [GemmInsn(uop_end=3, iter_out=5, iter_in=7),
             AluInsn(alu_opcode=ALU_ADD, uop_end=2, iter_out=3, iter_in=4),
             AluInsn(alu_opcode=ALU_ADD, use_imm=1, imm=3, uop_end=2, iter_out=3),
             GemmInsn(iter_out=0), FinishInsn()]
    t = estimate(encode_stream(insns))
    assert dur(t, 0) == gemm_cycles(105)
    assert dur(t, 1) == HW.insn_overhead + HW.alu_fill + 24 * HW.alu_ii_two_operand
    assert dur(t, 2) == HW.insn_overhead + HW.alu_fill + 6 * HW.alu_ii_immediate
    assert dur(t, 3) == HW.insn_overhead  # zero trips: only the command handling
    assert t.gemm_uops == 105 and t.macs == 105 * 256 and t.alu_uops == 30


def test_dma_costs_pay_latency_per_row_and_one_cycle_per_pad_entry():
    insns = [MemInsn(memory_type=MEM_INP, y_size=4, x_size=10, x_stride=20, y_pad_0=1, x_pad_1=2, push_next_dep=1),
             MemInsn(memory_type=MEM_WGT, y_size=1, x_size=3, x_stride=3, push_next_dep=1),
             GemmInsn(iter_out=0, pop_prev_dep=1), GemmInsn(iter_out=0, pop_prev_dep=1), FinishInsn()]
    t = estimate(encode_stream(insns))
    assert dur(t, 0) == load_cycles(4, 10, 16, pad_entries=5 * 12 - 40)
    assert dur(t, 1) == load_cycles(1, 3, 256)
    assert t.dram_bytes == {"inp": 640, "wgt": 768, "acc": 0, "uop": 0, "out": 0, "insn": 80}


def test_concurrent_load_and_store_share_the_bus():
    """With shared_bus, load and store reach DRAM through one AXI port: the store's beats wait while the
    load's stream, its first-beat latency does not; without it (the shipped default) they overlap completely."""
    insns = [MemInsn(memory_type=MEM_INP, y_size=1, x_size=64, x_stride=64),
             MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, y_size=1, x_size=64, x_stride=64), FinishInsn()]
    load_beats = math.ceil(64 * 16 / READ)
    store_beats = math.ceil(64 * 16 / HW.write_bytes_per_cycle)
    load_own = HW.insn_overhead + HW.dma_setup + HW.axi_read_latency
    store_own = HW.insn_overhead + HW.dma_setup + HW.axi_write_latency
    load_start, store_start = first_start(), first_start() + 16 // BUS
    t = estimate(encode_stream(insns), hw=dataclasses.replace(HW, shared_bus=True))
    assert t.end[0] == load_start + load_own + load_beats  # first on the port: unaffected
    # The store streams until the load's beats take the port, then finishes after them.
    before = load_start + load_own - (store_start + store_own)
    assert 0 < before < store_beats
    assert t.end[1] == load_start + load_own + load_beats + store_beats - before
    alone = estimate(encode_stream(insns))  # the shipped profile: shared_bus=False
    assert alone.end[1] == store_start + store_own + store_beats and alone.end[0] == t.end[0]


def test_bus_fills_the_gaps_others_leave():
    bus = _Bus()
    bus.take(bus.fill(10, 5)[1])  # [10, 15)
    bus.take(bus.fill(20, 5)[1])  # [20, 25)
    end, pieces = bus.fill(8, 8)  # 2 cycles before the first, 5 in the gap, 1 after the second
    assert (end, pieces) == (26, [(8, 10), (15, 20), (25, 26)])
    bus.take(pieces)
    assert (bus.s, bus.e) == ([8], [26])  # merged into one busy interval


def test_serialized_program_takes_the_sum_of_its_parts(dev):
    """Every instruction on the compute module, in order: no overlap, so cycles add up exactly."""
    insns = [load_uops(dev, [(0, 0, 0), (1, 0, 0)]), GemmInsn(reset_reg=1, uop_end=2, iter_out=4, dst_factor_out=2)]
    insns += [AluInsn(alu_opcode=ALU_ADD, use_imm=1, imm=k, uop_end=2, iter_out=4, dst_factor_out=2,
                      src_factor_out=2) for k in range(5)]
    run = program(dev, insns).run()
    t = run.timing
    parts = sum(dur(t, i) for i in range(len(insns) + 1))
    assert t.cycles == first_start() + parts
    assert t.modules["compute"].busy == parts
    assert t.modules["compute"].token_stall == 0 and t.modules["load"].busy == 0


def test_cross_module_chain_adds_one_token_latency_per_handoff():
    insns = [MemInsn(memory_type=MEM_INP, y_size=1, x_size=8, x_stride=8, push_next_dep=1),
             GemmInsn(uop_end=1, iter_out=64, pop_prev_dep=1, push_prev_dep=1),
             MemInsn(memory_type=MEM_INP, y_size=1, x_size=8, x_stride=8, pop_next_dep=1, push_next_dep=1),
             FinishInsn(pop_prev_dep=1)]
    t = estimate(encode_stream(insns))
    assert t.cycles == first_start() + sum(dur(t, i) for i in range(4)) + 3 * HW.token_latency


def tiles(dev, n: int, double: bool, inp_x: int = 64, wgt_x: int = 4, uops: int = 64) -> tuple:
    """n GEMM tiles; each loads INP and WGT, then one GEMM. ``double``: two SRAM contexts, so the
    load of tile t waits for GEMM t-2 instead of t-1 (TVM's virtual threads). Each tile reads its
    own DRAM rows, so no load finds its rows in the L2 cache and every load costs the same."""
    inp = put(dev, np.ones((n * inp_x, 16), dtype=np.int8))
    wgt = put(dev, np.ones((n * wgt_x, 256), dtype=np.int8))
    lag = 2 if double else 1
    insns = [load_uops(dev, [(u, c * inp_x + u % inp_x, c * wgt_x + u % wgt_x) for c in (0, 1) for u in range(uops)]),
             GemmInsn(reset_reg=1, uop_end=uops)]
    for t in range(n):
        c = t % 2 if double else 0
        insns += [MemInsn(memory_type=MEM_INP, sram_base=c * inp_x, dram_base=inp.phys_addr // 16 + t * inp_x,
                          y_size=1, x_size=inp_x, x_stride=inp_x, pop_next_dep=int(t >= lag)),
                  MemInsn(memory_type=MEM_WGT, sram_base=c * wgt_x, dram_base=wgt.phys_addr // 256 + t * wgt_x,
                          y_size=1, x_size=wgt_x, x_stride=wgt_x, push_next_dep=1),
                  GemmInsn(uop_bgn=c * uops, uop_end=(c + 1) * uops, pop_prev_dep=1, push_prev_dep=int(t + lag < n))]
    return insns, load_cycles(1, inp_x, 16) + load_cycles(1, wgt_x, 256), gemm_cycles(uops)


def test_double_buffering_overlaps_load_and_compute(dev):
    n = 8
    serial_insns, load, gemm = tiles(dev, n, double=False)
    serial = program(dev, serial_insns).run().timing
    dbuf = program(dev, tiles(dev, n, double=True)[0]).run().timing
    assert serial.cycles >= n * (load + gemm)  # nothing overlaps
    setup = dur(serial, 0) + dur(serial, 1)  # LOAD UOP and the reset GEMM may overlap the first load
    assert busy_overlap(serial, "load", "compute") <= setup
    # With two contexts only the first load is exposed (plus one token latency per tile).
    assert dbuf.cycles <= serial.cycles - (n - 1) * min(load, gemm) + n * 2 * HW.token_latency
    assert busy_overlap(dbuf, "load", "compute") >= (n - 1) * min(load, gemm) - n * 2 * HW.token_latency + setup
    assert dbuf.gemm_uops == serial.gemm_uops


def test_compute_bound_gemm_approaches_256_macs_per_cycle():
    t = estimate(encode_stream([GemmInsn(uop_end=4, iter_out=500, iter_in=500), FinishInsn()]))
    per_cycle = t.macs / t.cycles
    fixed = first_start() + HW.insn_overhead * 2 + HW.gemm_fill
    assert per_cycle == pytest.approx(256 * 1_000_000 / (1_000_000 + fixed), rel=1e-9)
    assert per_cycle > 255.9 and t.utilization > 0.9996
    assert t.gops == pytest.approx(2 * 256 * 100e6 / 1e9 * t.utilization)  # peak 51.2 GOPS at 100 MHz


def test_dma_bound_load_approaches_the_read_rate():
    insns = [MemInsn(memory_type=MEM_WGT, y_size=1, x_size=1024, x_stride=1024, push_next_dep=1),
             FinishInsn(pop_prev_dep=1)]
    t = estimate(encode_stream(insns))
    beats = math.ceil(1024 * 256 / READ)  # one row: its beats at the sustained read rate
    fixed = HW.insn_overhead + HW.dma_setup + HW.axi_read_latency
    assert t.modules["load"].busy == load_cycles(1, 1024, 256) and t.modules["load"].busy - beats == fixed
    assert t.dram_bytes["wgt"] / t.cycles > READ * 0.995


def test_rows_read_again_stream_at_the_l2_rate_until_evicted():
    """A LOAD row the L2 still holds (LRU over whole rows) streams at l2_read_bytes_per_cycle after the
    same latency; a row pushed out by more than l2_bytes of other rows since is read from DRAM again."""
    hw = dataclasses.replace(HwTiming(), read_bytes_per_cycle=4.0, l2_read_bytes_per_cycle=8.0, l2_bytes=4096)

    def rows(base: int, y: int = 2) -> MemInsn:  # y rows of one 1 KiB weight block each
        return MemInsn(memory_type=MEM_WGT, dram_base=base, y_size=y, x_size=4, x_stride=4)

    t = estimate(encode_stream([rows(0), rows(0), rows(100), rows(200), rows(0), rows(204), FinishInsn()]), hw=hw)
    fixed = hw.insn_overhead + hw.dma_setup
    miss, hit = hw.axi_read_latency + 1024 // 4, hw.axi_read_latency + 1024 // 8
    half = hw.axi_read_latency + 1024 // 8 + 1024 // 16  # one of the two rows held: the share hit streams faster
    assert [dur(t, i) for i in range(6)] == [fixed + 2 * miss, fixed + 2 * hit, fixed + 2 * miss, fixed + 2 * miss,
                                             fixed + 2 * miss,  # 4 KiB of other rows since: evicted
                                             fixed + 2 * half]  # row 204 still held, row 208 new
    t = estimate(encode_stream([rows(0), rows(8), rows(0), FinishInsn()]), hw=hw)  # all rows fit: no eviction
    assert [dur(t, i) for i in range(3)] == [fixed + 2 * miss, fixed + 2 * miss, fixed + 2 * hit]
    assert estimate(encode_stream([rows(0), rows(0), FinishInsn()]), hw=HwTiming()).cycles == \
        estimate(encode_stream([rows(0), rows(8), FinishInsn()]), hw=HwTiming()).cycles  # l2_bytes 0: no cache


def test_l2_bounds_decide_rows_as_the_row_by_row_lru_does():
    """The vectorized bounds (every byte read since: held; first reads since beyond the cache: evicted)
    give the LRU's answer on every row they decide, and the row-by-row pass runs for the rest."""
    from vta.sim.perf import _lru_hits, _row_hits

    rng = np.random.default_rng(7)

    for _ in range(200):
        n = int(rng.integers(1, 60))
        keys = rng.integers(0, int(rng.integers(1, 30)), n).astype(np.int64)
        size = (keys % 7 + 1) * 64  # one size per key, as rows of one address and length have
        for capacity in (64, 300, 1000, 5000):
            assert np.array_equal(_row_hits(keys, size, capacity), _lru_hits(keys, size, capacity))


def test_cycles_scale_linearly_with_work(dev):
    def cycles(k: int) -> int:
        insns = [GemmInsn(uop_end=2, iter_out=50), AluInsn(uop_end=1, iter_out=30, use_imm=1)] * k
        return estimate(encode_stream(insns + [FinishInsn()])).cycles

    c = [cycles(k) for k in (1, 2, 4, 8)]
    step = c[1] - c[0]
    assert step == gemm_cycles(100) + HW.insn_overhead + HW.alu_fill + 30 * HW.alu_ii_immediate
    assert c[2] - c[1] == 2 * step and c[3] - c[2] == 4 * step
    db = [program(dev, tiles(dev, n, double=True)[0]).run().timing.cycles for n in (4, 6, 8)]
    assert db[2] - db[1] == db[1] - db[0]  # steady state: each extra pair of tiles costs the same


def test_clock_and_constants_are_configurable():
    data = encode_stream([GemmInsn(uop_end=1, iter_out=1000), FinishInsn()])
    base, fast = estimate(data), estimate(data, hw=dataclasses.replace(HW, clock_mhz=200, gemm_fill=0))
    assert fast.cycles == base.cycles - HW.gemm_fill
    assert fast.seconds == pytest.approx(fast.cycles / 200e6)


def test_run_result_timing_is_the_estimate_of_its_stream(dev):
    insns, _, _ = tiles(dev, 3, double=True)
    p = program(dev, insns)
    run = p.run()
    alone = estimate(dev.read_stream(p.insns.phys_addr, p.count))
    assert run.timing.cycles == alone.cycles and np.array_equal(run.timing.start, alone.start)
    assert run.timing.as_dict()["modules"]["compute"]["busy"] == alone.modules["compute"].busy


def test_full_command_queue_stalls_fetch():
    n = 600  # more than the 512-deep load queue: fetch waits for the load module to drain it
    insns = [MemInsn(opcode=OP_LOAD, memory_type=MEM_INP, y_size=1, x_size=64, x_stride=64)] * n
    t = estimate(encode_stream(insns + [MemInsn(x_size=0, push_next_dep=1), FinishInsn(pop_prev_dep=1)]))
    assert t.modules["fetch"].starved > 0
    k = n - HW.cmd_queue_depth  # instruction 512 + k is fetched once load took instruction k
    assert t.fetch_start[HW.cmd_queue_depth + k - 1] >= t.issue[k - 1]


def test_full_token_fifo_blocks_the_pusher():
    n = HW.token_queue_depth + 50
    insns = [GemmInsn(uop_end=8, iter_out=12_500)] + [MemInsn(x_size=0, push_next_dep=1)] * n
    insns += [GemmInsn(iter_out=0, pop_prev_dep=1)] * n + [FinishInsn()]
    t = estimate(encode_stream(insns))
    # Push 1025 waits until the first pop, after the long GEMM: the loads before it took insn_overhead each.
    exposed = gemm_cycles(100_000) - (HW.token_queue_depth + 1) * HW.insn_overhead
    assert exposed > 10_000
    assert t.modules["load"].token_stall == pytest.approx(exposed, abs=50)
    assert t.issue[2 + HW.token_queue_depth] >= t.start[1 + n]


def test_fetch_deadlock_of_the_hardware_is_reported():
    """Loads wait on compute instructions placed after them; a full load queue keeps fetch from them."""
    n = HW.cmd_queue_depth + 10
    insns = [MemInsn(x_size=0, pop_next_dep=1)] * n + [GemmInsn(iter_out=0, push_prev_dep=1)] * n
    with pytest.raises(DeadlockError, match=r"command queue \(512 deep\) is full: the hardware would hang"):
        estimate(encode_stream(insns + [FinishInsn()]))


def test_missing_finish_and_token_deadlock_are_refused():
    with pytest.raises(MissingFinishError, match=r"^missing_finish: the stream of 1 instruction\(s\) has no FINISH"):
        estimate(encode_stream([GemmInsn(iter_out=0)]))
    with pytest.raises(DeadlockError, match=r"^deadlock: instruction 0, compute module: waits for a token on l2g"):
        estimate(encode_stream([FinishInsn(pop_prev_dep=1)]))


def test_conv_vectors_predict_plausible_figures(vectors_dir):
    from vta.sim.vector import load_vector

    for path in sorted((vectors_dir / "conv").iterdir()):
        v = load_vector(path)
        t = estimate(v.insn_bytes())
        assert t.macs == v.stats["gemm_counter"] * 256
        assert t.dram_bytes["wgt"] == v.stats["wgt_load_nbytes"]
        assert 0.1 < t.utilization < 1 and t.gops < 51.2
        assert t.cycles >= t.modules["compute"].busy >= t.gemm_uops


def test_concatenated_runs_follow_each_other():
    a = estimate(encode_stream([GemmInsn(uop_end=1, iter_out=100), FinishInsn()]))
    b = estimate(encode_stream([MemInsn(memory_type=MEM_WGT, y_size=1, x_size=4, x_stride=4, push_next_dep=1),
                                FinishInsn(pop_prev_dep=1)]))
    both = concatenate([a, b])
    assert concatenate([a]) is a
    assert both.cycles == a.cycles + b.cycles and both.gemm_uops == 100 and both.dram_bytes["wgt"] == 1024
    assert both.modules["load"].busy == b.modules["load"].busy and both.modules["load"].idle == a.cycles + \
        b.modules["load"].idle
    assert [iv.label for iv in both.intervals if iv.track != "fetch"] == ["GEMM", "FINISH", "LOAD WGT", "FINISH"]
    assert both.start.tolist() == a.start.tolist() + (b.start + a.cycles).tolist()
    with pytest.raises(ConfigError, match=r"^concatenate needs at least one Timing, got none$"):
        concatenate([])
    fast = estimate(encode_stream([FinishInsn()]), hw=HwTiming(clock_mhz=200))
    with pytest.raises(ConfigError, match=r"^runs timed at different clocks or bus widths cannot be concatenated: "
                                          r"\[\(100\.0, 8\), \(200\.0, 8\)\]$"):
        concatenate([a, fast])


def test_timing_only_refuses_the_defects_it_checks(vectors_dir):
    """docs/perf-model.md: word-level checks and deadlocks, not the data-dependent defects."""
    from vta.errors import ProgramError
    from vta.sim.vector import load_vector

    checked = {"bad_memory_type", "deadlock", "illegal_dep_flag", "malformed_insn", "missing_finish", "unknown_opcode"}
    seen = set()
    for path in sorted((vectors_dir / "negative").iterdir()):
        v = load_vector(path)
        try:
            estimate(v.insn_bytes())
            got = None
        except ProgramError as e:
            got = e.error_class
        if v.meta["class"] in checked:
            assert got == v.meta["class"], path.name
        else:  # dram_oob, sram_oob, race, uninit_sram, early_finish need the data or the SRAM state
            assert got in (None, "deadlock"), path.name  # an early FINISH can leave a module waiting
        seen.add(v.meta["class"])
    assert checked < seen


def test_cli_timing_only_refusal(vectors_dir, capsys):
    from vta.cli import main

    assert main(["sim", "run-vector", str(vectors_dir / "negative" / "neg_deadlock_1"), "--timing-only", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "status": "refused", "error_class": "deadlock", "counters": None, "timing": None,
        "message": "deadlock: instruction 1, load module: waits for a token on g2l (compute->load)"}
