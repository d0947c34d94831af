"""BoardDevice over the emulator: vectors, every injected fault, recovery, argument checks."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest

from tests.driver.programs import place, run_vector
from vta.driver.device import BoardDevice
from vta.errors import BackendError, DeviceBusy, DeviceError, DeviceTimeout
from vta.sim.vector import load_vector

SMALL = "random/rand_001"


@pytest.fixture
def vector(vectors_dir):
    return load_vector(vectors_dir / SMALL)


def _ok(device, vector):
    buf = run_vector(device, vector)
    assert np.array_equal(buf.array, vector.mem_out)


def test_vector_runs_through_the_c_driver(device, vector):
    for _ in range(3):
        _ok(device, vector)


def test_hang_times_out_within_deadline_and_recovers(device, board, vector, caplog):
    caplog.set_level(logging.INFO, logger="vta.driver.device")
    hooks = []
    device.on_reset(lambda: hooks.append(1))
    board.inject("hang")
    place(device, vector)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match=r"did not finish within 0\.2 s: compute done register \(0x43c02018\) "
                       r"still read 0 .*modules: fetch 0x6 \(done, idle\); load 0x81 \(start, auto_restart\).*"
                       r"emulator reports: fault: the core never finishes \(injected\).*Recovered: emulated board "
                       r".* re-programmed \(reset\); the next run starts on a clean device$"):
        device.run(vector.insn_phys, vector.insn_count, timeout_s=0.2)
    assert time.monotonic() - t0 < 1.5 and hooks == [1] and device.recoveries == 1
    levels = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records]
    assert levels[0][0] == "WARNING" and "did not finish within 0.2 s" in caplog.records[0].getMessage()
    assert [level for level, _ in levels].count("WARNING") == 1
    run = f"VTA run of {vector.insn_count} instruction(s) at 0x{vector.insn_phys:x} on {board.path}"
    assert levels[-1] == ("INFO", f"VTA device {board.path} recovered ({run} did not finish within 0.2 s")
    _ok(device, vector)


def test_late_finish_inside_deadline_succeeds(device, board, vector):
    board.inject("late", delay_s=0.05)
    buf = place(device, vector)
    report = device.run(vector.insn_phys, vector.insn_count, timeout_s=2.0)
    assert report.elapsed_s >= 0.05 and np.array_equal(buf.array, vector.mem_out)


def test_late_finish_after_deadline_times_out_and_next_run_works(device, board, vector):
    board.inject("late", delay_s=1.0)
    place(device, vector)
    with pytest.raises(DeviceTimeout, match=r"finishing 1\.000 s late \(injected\)"):
        device.run(vector.insn_phys, vector.insn_count, timeout_s=0.2)
    _ok(device, vector)


def test_wrong_done_value_is_reported_at_once(device, board, vector):
    board.inject("bad_done", value=0xDEAD)
    place(device, vector)
    with pytest.raises(DeviceError, match=r"compute done register \(0x43c02018\) read 0xdead after .* expected 0 "
                       r"or 1 \(is the FPGA programmed with the VTA bitstream\?\)") as info:
        device.run(vector.insn_phys, vector.insn_count, timeout_s=5.0)
    assert not isinstance(info.value, DeviceTimeout)
    _ok(device, vector)


def test_rejected_register_write_is_named(device, board, vector, expected_deviations):
    device.recover()  # done reads 0 after re-programming, so no done-clearing NOP run comes first
    board.inject("reject_write", register=("fetch", 0x18))
    place(device, vector)
    with pytest.raises(DeviceTimeout, match=r"fetch insns register \(0x43c00018\) reads 0xbad0c0de after the driver "
                       rf"wrote 0x{vector.insn_phys:x}: the write was not accepted.*rejected the write.*deviation: "
                       r"fetch was started before fetch\+0x18 \(insns\) was written for this run"):
        device.run(vector.insn_phys, vector.insn_count, timeout_s=0.2)
    expected_deviations[0] = 1
    _ok(device, vector)


def test_rejected_start_leaves_compute_idle(device, board, vector):
    device.recover()  # after re-programming compute's ap_ctrl is idle, so its 0x81 write is a change
    board.inject("reject_write", register=("compute", 0x00))
    place(device, vector)
    with pytest.raises(DeviceTimeout, match=r"compute 0x4 \(idle\); store 0x81 \(start, auto_restart\).*"
                       r"rejected the write of 0x81 to compute\+0x00"):
        device.run(vector.insn_phys, vector.insn_count, timeout_s=0.2)
    _ok(device, vector)


def test_program_the_device_cannot_finish_times_out(device, board, vectors_dir):
    neg = load_vector(vectors_dir / "negative/neg_deadlock_0")
    place(device, neg)
    with pytest.raises(DeviceTimeout, match=r"emulator reports: program: the device would not finish: deadlock"):
        device.run(neg.insn_phys, neg.insn_count, timeout_s=0.2)


def test_second_owner_is_busy_not_hung(device, board):
    with pytest.raises(DeviceBusy, match=rf"^VTA device {re.escape(str(board.path))} is busy: owned by pid \d+ \(.+\) "
                       r"\(lock .*\.lock\); close that session \(or wait for it to finish\) and retry$"):
        BoardDevice.open_emulated(board)


def test_bad_arguments(device):
    with pytest.raises(DeviceError, match=r"^instruction address 0x8 must be a 16-byte aligned 32-bit address$"):
        device.run(8, 1)
    with pytest.raises(DeviceError, match=r"^instruction count must be in 1..2\^32-1, got 0$"):
        device.run(0x1000, 0)
    with pytest.raises(DeviceError, match=r"^a run timeout must be a positive number of seconds, got 0$"):
        device.run(0x1000, 1, timeout_s=0)
    with pytest.raises(BackendError, match=r"^DMA buffer size must be an integer in 1\.\.33554432"):
        device.alloc(0)


def test_buffers_come_from_the_pool_and_are_reused(device):
    a, b = device.alloc(100), device.alloc(5000)
    assert a.phys_addr == 0x18000000 and b.phys_addr == 0x18001000 and a.nbytes == 100
    a.array[:] = 7
    a.flush()
    a.invalidate()
    a.free()
    with pytest.raises(BackendError, match=r"^DMA buffer at 0x18000000 was already freed$"):
        a.free()
    assert device.alloc(4096).phys_addr == 0x18000000
    b.free()


def test_closed_device(board):
    dev = BoardDevice.open_emulated(board)
    dev.close()
    dev.close()
    with pytest.raises(DeviceError, match=r"is closed$"):
        dev.run(0x1000, 1)


def test_device_files_stay_usable_after_many_recoveries(device, board, vector):
    for _ in range(3):
        board.inject("hang")
        place(device, vector)
        with pytest.raises(DeviceTimeout):
            device.run(vector.insn_phys, vector.insn_count, timeout_s=0.05)
    _ok(device, vector)


RACY = "random/rand_003"  # its first compute instruction pops a load token, like the runtime's LOAD UOP pop_prev


@pytest.fixture
def slow_tokens(board):
    """The emulator shows fetch finished with the previous run's done == 1 for 0.5 s before done drops."""
    before = board.token_wait_s
    board.token_wait_s = 0.5
    yield 0.5
    board.token_wait_s = before


def _wait_runs(board, runs):
    deadline = time.monotonic() + 5.0
    while board.runs < runs and time.monotonic() < deadline:
        time.sleep(0.01)


def test_stale_done_ends_the_bare_reference_protocol_early(device, board, vectors_dir, slow_tokens):
    racy = load_vector(vectors_dir / RACY)
    _ok(device, racy)  # leaves done == 1, as every finished run does
    runs = board.runs
    buf = place(device, racy)
    report = device.mmio.run(racy.insn_phys, racy.insn_count, 5.0, clear_phys=0)  # the old driver's protocol
    assert report.status == 0 and report.elapsed_s < slow_tokens and report.stale_done == 1
    assert board.runs == runs and not np.array_equal(buf.array, racy.mem_out)  # "finished" before the STORE ran
    _wait_runs(board, runs + 1)
    assert np.array_equal(buf.array, racy.mem_out)


def test_driver_clears_a_stale_done_before_the_run(device, board, vectors_dir, slow_tokens):
    racy = load_vector(vectors_dir / RACY)
    _ok(device, racy)
    runs = board.runs
    buf = place(device, racy)
    report = device.run(racy.insn_phys, racy.insn_count)
    assert report.stale_done == 1 and report.cleared is True and report.elapsed_s >= slow_tokens
    assert board.runs == runs + 1 and np.array_equal(buf.array, racy.mem_out)


def test_no_clearing_run_after_a_reset(device, board, vector):
    device.recover()
    place(device, vector)
    report = device.run(vector.insn_phys, vector.insn_count)
    assert report.stale_done == 0 and report.cleared is None


def test_the_pool_places_buffers_as_the_simulators_dram_does(board):
    from vta.sim.dram import Dram

    sizes, frees = (4096, 3 * 4096, 4096, 100, 4096, 4096), (1, 3)  # allocate, free two, allocate again
    with BoardDevice.open_emulated(board, pool_bytes=1 << 20) as dev:
        bufs = [dev.alloc(n) for n in sizes[:4]]
        for i in frees:
            bufs[i].free()
        got = [b.phys_addr for b in bufs] + [dev.alloc(n).phys_addr for n in sizes[4:]]
        with pytest.raises(DeviceError, match=r"^emulator DMA pool \(0x18000000, 1 MiB\) cannot fit 1048576 more "
                           r"bytes; free buffers or use a larger pool$"):
            dev.alloc(1 << 20)
    dram = Dram(0x18000000, 0x18000000 + (1 << 20))
    blocks = [dram.alloc(n) for n in sizes[:4]]
    for i in frees:
        dram.free(blocks[i])
    assert got == [b.phys_addr for b in blocks] + [dram.alloc(n).phys_addr for n in sizes[4:]]


def test_a_stream_without_finish_hangs_like_the_board(device, board):
    from vta.isa import MEM_UOP, MemInsn, encode_stream

    buf = device.alloc(32)
    buf.array[:] = np.frombuffer(encode_stream([MemInsn(memory_type=MEM_UOP), MemInsn(memory_type=MEM_UOP,
                                                                                      pop_prev_dep=1)]), np.uint8)
    with pytest.raises(DeviceTimeout, match=r"emulator reports: program: the device would not finish: the stream has "
                       r"no FINISH, so done never becomes 1"):
        device.run(buf.phys_addr, 2, timeout_s=0.2)


def test_the_clearing_nop_runs_only_when_done_is_stale(device, board, vector):
    device.recover()
    clears = board.ctl["clears"]
    for _ in range(3):
        _ok(device, vector)
    assert board.ctl["clears"] == clears + 2  # not before the first run after the reset
