"""The board emulator's protocol checker, driven with raw register writes through the C driver."""

from __future__ import annotations

import time

import pytest

from vta.driver.emulated import EmulatedBoard
from vta.driver.emulator import POISON
from vta.driver.mmio import Mmio
from vta.errors import DeviceError


@pytest.fixture
def regs(board):
    board.reset()
    board.events()
    mmio = Mmio(board.path, board.bases)
    yield mmio
    mmio.close()


def _events(board, n):
    """The next ``n`` event lines (the emulator polls, so wait a bounded time for them)."""
    got: list[str] = []
    deadline = time.monotonic() + 2.0
    while len(got) < n and time.monotonic() < deadline:
        got += board.events()
        time.sleep(0.001)
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
