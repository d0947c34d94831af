"""The board emulator's protocol checker, driven with raw register writes through the C driver."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vta.driver.emulated import EmulatedBoard
from vta.driver.emulator import POISON
from vta.driver.mmio import Mmio
from vta.errors import DeviceError


@pytest.fixture
def regs(board):
    board.reset()
    board.events()
    mmio = Mmio(board.path, board.bases, board.doorbell)
    yield mmio
    mmio.close()


def _events(board, n):
    """The events the writes made so far caused: the emulator acknowledges having applied them (no timing)."""
    board.sync()
    got = board.events()
    assert len(got) == n, got
    return got


def test_reset_state(regs):
    assert [regs.read(m, 0) for m in range(4)] == [0x4] * 4
    assert regs.read("fetch", 0x10) == POISON and regs.read("compute", 0x18) == 0


def test_start_without_arguments_hangs_and_is_reported(regs, board):
    regs.write("fetch", 0, 1)
    events = _events(board, 7)
    assert events[0] == "deviation: fetch was started before fetch+0x10 (insn_count) was written for this run"
    assert "load+0x10 (inputs)" in events[2] and len(events) == 7


def test_nonzero_data_base_register(regs, board):
    for m, off, v in (("fetch", 0x10, 1), ("fetch", 0x18, 0x1000), ("load", 0x10, 0x2000), ("load", 0x18, 0),
                      ("compute", 0x20, 0), ("compute", 0x28, 0), ("store", 0x10, 0)):
        regs.write(m, off, v)
    regs.write("fetch", 0, 1)
    assert _events(board, 1) == ["deviation: load+0x10 (inputs) is 0x2000 at start; the protocol writes 0 "
                                 "(dram_base values are absolute physical addresses)"]


def test_writes_the_hardware_drops_are_reverted(regs, board):
    regs.write("compute", 0x18, 1)
    regs.write("store", 0x40, 7)
    assert _events(board, 2) == [
        "deviation: write of 0x1 to compute+0x18 (read-only done register): the hardware does not accept it",
        "deviation: write of 0x7 to store+0x40 (no register there): the hardware does not accept it"]
    assert regs.read("compute", 0x18) == 0 and regs.read("store", 0x40) == 0


def test_reserved_ctrl_bits_and_start_without_auto_restart(regs, board):
    regs.write("load", 0, 0x101)
    assert _events(board, 1) == ["deviation: load+0x00 (ap_ctrl) written 0x101: only start (0x1) and auto_restart "
                                 "(0x80) are writable"]
    assert regs.read("load", 0) == 0x1
    for m, off, v in (("fetch", 0x10, 1), ("fetch", 0x18, 0x1000), ("load", 0x10, 0), ("load", 0x18, 0),
                      ("compute", 0x20, 0), ("compute", 0x28, 0), ("store", 0x10, 0)):
        regs.write(m, off, v)
    regs.write("fetch", 0, 1)
    regs.write("compute", 0, 0x81)
    regs.write("store", 0, 0x81)
    assert _events(board, 1) == ["deviation: load started with 0x1, not 0x81 (auto-restart): it would run one "
                                 "instruction and stop"]


def test_interrupt_registers_are_accepted_but_reported(regs, board):
    regs.write("fetch", 0x04, 1)
    assert _events(board, 1) == ["deviation: write of 0x1 to fetch+0x04 (global interrupt enable): not part of the "
                                 "run protocol"]
    assert regs.read("fetch", 0x04) == 1


def test_inject_rejects_unknown_faults(board):
    with pytest.raises(DeviceError, match=r"^unknown emulator fault 'melt'; expected one of hang, late, bad_done, "
                       r"reject_write$"):
        board.inject("melt")
    with pytest.raises(DeviceError, match=r"^cannot reject writes to \('fetch', 0\); choose one of fetch\+0x10"):
        board.inject("reject_write", register=("fetch", 0))


def test_connect_to_a_served_file(board, tmp_path):
    other = EmulatedBoard.connect(board.path)
    assert other.bases == board.bases and other.alive()
    with pytest.raises(DeviceError, match=rf"^no emulator file at {tmp_path}/x.mem: start one with"):
        EmulatedBoard.connect(tmp_path / "x.mem")


def test_emulator_process_is_gone_after_stop():
    emu = EmulatedBoard.start()
    proc = emu.process
    emu.stop()
    assert proc.poll() is not None and not emu.path.exists()


def _serve(args, capsys):
    from vta.cli import main

    rc = main(["emulator", "serve", *args])
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    return rc, err


def test_serve_refuses_a_file_that_is_not_an_image(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    rc, err = _serve([str(notes)], capsys)
    assert rc == 1 and err.startswith(f"vta emulator serve: error: cannot serve {notes}: it is not a VTA emulator "
                                      "image (8 bytes; an image is an empty file or a sparse file of exactly ")
    assert notes.read_text() == "keep me\n" and not (tmp_path / "notes.txt.bell").exists()


def test_a_second_server_on_the_same_image_is_refused(board, capsys):
    rc, err = _serve([str(board.path)], capsys)
    assert rc == 1 and err == (f"vta emulator serve: error: cannot serve {board.path}: another emulator already "
                               f"serves it (pid {board.process.pid}); stop that one or use another file\n")
    assert board.alive()


def test_serve_path_errors_are_one_line(tmp_path, capsys):
    rc, err = _serve([str(tmp_path / "no" / "board.mem")], capsys)
    assert rc == 1 and err.endswith(f"board.mem: folder {tmp_path / 'no'} does not exist\n")
    rc, err = _serve([str(tmp_path)], capsys)
    assert rc == 1 and err.endswith(": it is a directory; give a file name for the emulator image\n")


def test_token_wait_option_is_checked(capsys):
    from vta.driver.emulator import main

    with pytest.raises(SystemExit) as info:
        main(["x.mem", "--token-wait-us", "-5"])
    assert info.value.code == 2
    assert "argument --token-wait-us: expected a number of microseconds >= 0, got '-5'" in capsys.readouterr().err


def test_start_refuses_a_file_that_is_not_an_image(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(DeviceError, match=r"it is not a VTA emulator image"):
        EmulatedBoard.start(notes)
    assert notes.read_text() == "x"


def test_a_stopped_server_removes_its_doorbell(tmp_path):
    emu = EmulatedBoard.start(tmp_path / "b.mem")
    assert emu.doorbell.is_fifo()
    emu.stop()
    assert not emu.doorbell.exists() and (tmp_path / "b.mem").stat().st_size > 0


def test_a_new_server_starts_with_a_fresh_control_page(tmp_path):
    from vta.driver.emulator import Control, Emulator, open_image

    fd, mm = open_image(tmp_path / "b.mem")
    Control(mm)["stop_req"] = 1  # what the last client of an earlier server left behind
    mm.close()
    os.close(fd)
    emu = Emulator(tmp_path / "b.mem", token_wait_s=2e-3)
    try:
        assert emu.ctl["stop_req"] == 0 and emu.ctl["token_wait_us"] == 2000
    finally:
        emu.close()
    assert not (tmp_path / "b.mem.bell").exists()


def _start_by_hand(mmio, phys, count):
    """The reference run sequence written register by register (no polling), as the C driver does."""
    from vta.driver.regmap import ARG_REGS

    for m, off, name, need in ARG_REGS:
        mmio.write(m, off, {"insn_count": count, "insns": phys}.get(name, need))
    mmio.write("fetch", 0, 0x1)
    for m in ("load", "compute", "store"):
        mmio.write(m, 0, 0x81)


def _stream(device, insns):
    from vta.isa import encode_stream

    data = np.frombuffer(encode_stream(insns), np.uint8)
    buf = device.alloc(len(data))
    buf.array[:] = data
    return buf


@pytest.mark.parametrize("compute_nops", [8, 600])
def test_done_keeps_its_old_value_while_the_first_compute_instruction_waits(device, board, compute_nops):
    """HLS compute writes done = 0 only after its first instruction's pops; fetch finishes dispatching
    first unless a 512-deep command queue is full (then it stalls until compute moves)."""
    from vta.isa import MEM_INP, MEM_UOP, FinishInsn, MemInsn

    insns = [MemInsn(memory_type=MEM_INP, push_next_dep=1), MemInsn(memory_type=MEM_UOP, pop_prev_dep=1),
             *[MemInsn(memory_type=MEM_UOP)] * compute_nops, FinishInsn()]
    buf = _stream(device, insns)
    device.run(buf.phys_addr, len(insns))  # done == 1 afterwards
    before, board.token_wait_s = board.token_wait_s, 0.5
    runs = board.runs
    try:
        _start_by_hand(device.mmio, buf.phys_addr, len(insns))
        board.sync()
        fetch, done = device.mmio.read("fetch", 0), device.mmio.read("compute", 0x18)
        assert (fetch, done) == ((0x6, 1) if compute_nops < 512 else (0x1, 1))  # stale done; fetch done or stalled
        deadline = time.monotonic() + 5
        while board.runs == runs:  # not `done`: it already reads 1
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert device.mmio.read("fetch", 0) == 0x6 and device.mmio.read("compute", 0x18) == 1
    finally:
        board.token_wait_s = before


def test_a_pop_free_first_compute_instruction_leaves_no_stale_window(device, board):
    from vta.isa import MEM_UOP, FinishInsn, MemInsn

    insns = [MemInsn(memory_type=MEM_UOP), FinishInsn()]
    buf = _stream(device, insns)
    device.run(buf.phys_addr, 2)
    runs = board.runs
    _start_by_hand(device.mmio, buf.phys_addr, 2)
    board.sync()
    assert board.runs == runs + 1 and device.mmio.read("compute", 0x18) == 1  # finished by the time fetch is


def test_serve_stops_cleanly_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys

    image = tmp_path / "b.mem"
    proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "emulator", "serve", str(image)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith(f"serving an emulated VTA board in {image}")
        assert (tmp_path / "b.mem.bell").is_fifo()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0 and proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "b.mem.bell").exists()
    EmulatedBoard.start(image).stop()  # the image is free again
