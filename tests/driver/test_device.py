"""BoardDevice over the emulator: vectors, every injected fault, recovery, argument checks."""

from __future__ import annotations

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


def test_hang_times_out_within_deadline_and_recovers(device, board, vector):
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
    with pytest.raises(DeviceBusy, match=rf"^VTA device {re.escape(str(board.path))} is busy: lock .*\.lock is held "
                       r"by pid \d+; close that session \(or wait for it to finish\) and retry$"):
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
