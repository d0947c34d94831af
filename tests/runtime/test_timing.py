"""The predicted Pynq-Z1 timing through the runtime: Backend.timing() and Runtime.last_timing()."""

from __future__ import annotations

import numpy as np
import pytest

import vta.sim.device
from tests.runtime import programs
from tests.runtime.conftest import Launches
from vta.errors import BackendError, RaceError
from vta.isa import MEM_ACC, MEM_INP, MEM_WGT, OP_GEMM, encode_stream
from vta.runtime import Runtime, UopKernel
from vta.runtime.backends.sim import SimBackend
from vta.sim.perf import estimate

H = W = 6  # programs.conv3x3_tile's default tile


def test_conv_tile_timing_has_the_programs_figures(rt, rng, launches):
    got, want = programs.conv3x3_tile(rt, rng)
    assert np.array_equal(got, want)
    t = rt.last_timing()
    counters = rt.backend.counters()
    # conv-mac: 3*H micro-ops over (W, 3) loops; the reset GEMM does not accumulate.
    assert t.gemm_uops == W * 3 * 3 * H == counters["gemm_counter"] == 324
    assert t.macs == 324 * 256
    assert t.alu_uops == 3 * H * W == counters["alu_counter"]
    assert t.dram_bytes == {"inp": H * W * 16, "wgt": 9 * 256, "acc": 0, "uop": counters["uop_load_nbytes"],
                            "out": H * W * 16, "insn": 16 * len(launches.last)}
    assert t.dram_bytes["uop"] == (1 + 3 * H + 3) * 4  # each kernel loaded once
    assert t.cycles > t.modules["compute"].busy >= t.gemm_uops > 0
    assert t.seconds == pytest.approx(t.cycles / 100e6)
    assert t.utilization == pytest.approx(324 / t.cycles) and t.gops == pytest.approx(2 * t.macs / t.seconds / 1e9)
    assert set(t.modules) == {"fetch", "load", "compute", "store"}
    for m in t.modules.values():
        assert m.busy + m.token_stall + m.starved + m.idle == t.cycles
    alone = estimate(encode_stream(launches.last))
    assert t.cycles == alone.cycles and np.array_equal(t.start, alone.start)
    assert rt.backend.timing() is t  # one run: the backend's own (cached) prediction


def test_timing_is_computed_only_when_asked(rt, rng, monkeypatch):
    calls = []
    real = vta.sim.device.estimate
    monkeypatch.setattr(vta.sim.device, "estimate", lambda s: calls.append(s) or real(s))
    for _ in range(3):
        programs.matmul_tile(rt, rng)
    assert calls == []
    first = rt.last_timing()
    assert len(calls) == 1 and rt.last_timing() is first and len(calls) == 1
    assert first.gemm_uops == 16 and first.dram_bytes["wgt"] == 256


def test_auto_flushed_program_is_timed_as_a_whole(rng):
    with Runtime("sim", insn_capacity=24) as rt:
        launches = Launches(rt)
        got, want = programs.blocked_gemm(rt, rng)
        assert np.array_equal(got, want) and rt.stats.auto_flushes >= 2
        parts = [estimate(encode_stream(s)) for s in launches.streams]
        t = rt.last_timing()
        assert len(parts) == rt.stats.runs >= 3
        assert t.cycles == sum(p.cycles for p in parts)
        assert t.gemm_uops == sum(p.gemm_uops for p in parts) == 32 * 64 * 64 // 256
        assert t.dram_bytes["wgt"] == 64 * 64 and t.dram_bytes["insn"] == 16 * sum(map(len, launches.streams))
        assert t.modules["compute"].busy == sum(p.modules["compute"].busy for p in parts)
        n0 = len(launches.streams[0])
        assert t.stream.count == sum(map(len, launches.streams)) and len(t.intervals) == 2 * t.stream.count
        assert t.fetch_start[n0] == parts[0].cycles + parts[1].fetch_start[0]  # the second run starts after the first
        assert rt.backend.timing().cycles == parts[-1].cycles  # the backend times only its last run
        gemms = [iv for iv in t.intervals if iv.track == "compute" and t.stream.opcode[iv.index] == OP_GEMM]
        assert [iv.start for iv in gemms] == sorted(iv.start for iv in gemms)
        programs.matmul_tile(rt, rng)  # a new program replaces the old one
        assert rt.last_timing().gemm_uops == 16


def test_refused_program_keeps_the_last_timing(rt, rng, env):
    programs.matmul_tile(rt, rng)
    before = rt.last_timing()
    q = rt.queue
    for n, mt in ((256, MEM_INP), (256, MEM_WGT), (64, MEM_ACC)):
        q.load_2d(programs.put(rt, np.zeros(n, np.int8)), 0, 1, 1, 1, 0, 0, 0, 0, 0, mt)
    q.push_gemm("g", lambda: UopKernel.gemm([], [(0, 0, 0)], env=env))
    with pytest.raises(RaceError):
        q.synchronize()
    assert rt.last_timing() is before


def test_launch_of_a_vector_is_timed(vectors_dir):
    from vta.sim.vector import load_vector

    v = load_vector(vectors_dir / "random/rand_006")
    with Runtime("sim") as rt:
        buf = rt.alloc_at(v.phys_base, len(v.mem_in))
        buf.copy_from(v.mem_in)
        status = rt.launch(buf, v.meta["insn_offset"], v.insn_count)
        t = rt.last_timing()
        assert status.predict() is t and t.cycles == estimate(v.insn_bytes()).cycles
        assert t.macs == v.stats["gemm_counter"] * 256


def test_nothing_ran_yet():
    with pytest.raises(BackendError, match=r"^sim backend: timing\(\) before any run completed on it$"):
        SimBackend().timing()
    with Runtime("sim") as rt, \
            pytest.raises(BackendError, match=r"^last_timing: no program has run on this runtime yet$"):
        rt.last_timing()


def test_board_backend_has_no_timing_model(board, env, rng):
    from vta.runtime.backends.board import BoardBackend

    with Runtime(BoardBackend(env, emulator=board, timeout_s=5.0), env=env) as rt:
        got, want = programs.matmul_tile(rt, rng)
        assert np.array_equal(got, want)
        message = (r"^pynq backend has no timing model \(capabilities: bitstream, dma, fixed_address, recovery, "
                   r"timeout\)$")
        with pytest.raises(BackendError, match=message):
            rt.last_timing()
        with pytest.raises(BackendError, match=message):
            rt.backend.timing()
