"""The C driver on a plain file (no emulator): register access, timeout report, done checks, errors."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from vta.driver import _ffi
from vta.driver.mmio import Mmio, describe_ctrl
from vta.errors import DeviceError

BASES = (0x43C00000, 0x43C01000, 0x43C02000, 0x43C03000)


@pytest.fixture
def mmio(tmp_path):
    path = tmp_path / "mem"
    with open(path, "wb") as f:
        f.truncate(0x43C04000)
    regs = Mmio(path, BASES)
    yield regs
    regs.close()


def _word(path, addr):
    with open(path, "rb") as f:
        f.seek(addr)
        return int.from_bytes(f.read(4), "little")


def test_writes_land_at_physical_offsets(mmio):
    mmio.write("compute", 0x20, 0x12345678)
    assert _word(mmio.mem_path, 0x43C02020) == 0x12345678 and mmio.read(2, 0x20) == 0x12345678


def test_run_sequence_and_timeout_report(mmio):
    report = mmio.run(0x1000, 5, 0.02)
    assert report.status == 1 and 0.02 <= report.elapsed_s < 0.5 and report.polls > 0
    assert report.ctrl == (0x1, 0x81, 0x81, 0x81) and report.bad_write is None
    assert [_word(mmio.mem_path, a) for a in (0x43C00010, 0x43C00018, 0x43C01010, 0x43C02028, 0x43C03010)] == \
        [5, 0x1000, 0, 0, 0]
    assert report.modules_text().startswith("fetch 0x1 (start); load 0x81 (start, auto_restart)")


def test_done_with_start_still_pending_is_not_completion(mmio):
    mmio.write("compute", 0x18, 1)  # a done left over from an earlier run; fetch never accepted this start
    assert mmio.run(0x1000, 5, 0.02).status == 1


def test_impossible_done_value_returns_at_once(mmio):
    mmio.write("compute", 0x18, 0xFFFFFFFF)
    report = mmio.run(0x1000, 5, 5.0)
    assert report.status == 2 and report.done == 0xFFFFFFFF and report.elapsed_s < 1.0


def test_bad_module_offset_and_closed(mmio):
    with pytest.raises(DeviceError, match=r"^unknown VTA module 'dma'; expected one of fetch, load, compute, store$"):
        mmio.read("dma", 0)
    with pytest.raises(DeviceError, match=r"^register offset 0x1000 is outside the 0x1000-byte window"):
        mmio.write(0, 0x1000, 1)
    mmio.close()
    with pytest.raises(DeviceError, match=r"closed$"):
        mmio.read(0, 0)


def test_open_errors_name_the_c_call_and_errno(tmp_path):
    with pytest.raises(DeviceError, match=rf"^vta_device_open: open\(\) failed for {tmp_path}/nope: errno 2 \(ENOENT: "
                       r"No such file or directory\) \(no such memory device"):
        Mmio(tmp_path / "nope", BASES)
    with pytest.raises(DeviceError, match=r"^need 4 register bases"):
        Mmio(tmp_path / "nope", BASES[:3])


def test_permission_error_says_how_to_fix():
    with pytest.raises(DeviceError, match=r"^open\(\) failed for /dev/mem: errno 13 \(EACCES: Permission denied\) "
                       r"\(mapping /dev/mem needs root: run with sudo"):
        _ffi.check(-errno.EACCES, "open", "/dev/mem")
    assert _ffi.check(3, "open", "x") == 3


def test_missing_compiler_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(DeviceError, match=r"cannot build the VTA board driver .*needs a C compiler: install gcc"):
        _ffi.build_into(tmp_path)
    assert os.listdir(tmp_path) == []


def test_describe_ctrl():
    assert describe_ctrl(0x6) == "0x6 (done, idle)" and describe_ctrl(0) == "0x0 (busy)"


def test_build_without_setuptools_is_a_clear_error(tmp_path, monkeypatch):
    """Python >= 3.12 has no distutils: cffi then raises a bare Exception, which must become a DeviceError."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("setuptools", "distutils", "_distutils_hack")
                 or m == "cffi._shimmed_dist_utils"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "setuptools", None)
    monkeypatch.setitem(sys.modules, "distutils", None)
    with pytest.raises(DeviceError, match=r"cannot build the VTA board driver .*: Exception: This CFFI feature "
                       r"requires .*Building it needs setuptools \(pip install setuptools"):
        _ffi.build_into(tmp_path)


def test_register_constants_are_generated_from_regmap():
    from vta.driver import regmap
    from vta.driver._build import C_SOURCE, c_source

    hand_written = C_SOURCE.read_text()
    assert "#define VTA_" not in hand_written.replace("#define _", "")  # every VTA_ constant comes from regmap
    header = regmap.c_header()
    assert c_source().startswith(header)
    for name, value in (("VTA_COMPUTE_DONE_RD_OFFSET", regmap.DONE_RD), ("VTA_AUTORESTART", regmap.AUTO_RESTART),
                        ("VTA_IP_REG_MAP_RANGE", regmap.MAP_RANGE)):
        assert f"#define {name} 0x{value:x}" in header or f"#define {name} 0x{value:02x}" in header
    assert "#define VTA_ARG_REGS { {0, 0x10}, {0, 0x18}, {1, 0x10}, {1, 0x18}, {2, 0x20}, {2, 0x28}, {3, 0x10} }" \
        in header


def test_a_doorbell_without_an_emulator_is_named(mmio, tmp_path):
    bell = tmp_path / "mem.bell"
    with pytest.raises(DeviceError, match=rf"^cannot open the emulator doorbell {bell}: No such file or directory; "
                       rf"is an emulator still serving {mmio.mem_path}\? \(vta emulator serve "):
        Mmio(mmio.mem_path, BASES, bell)
    os.mkfifo(bell)  # left behind by a server that died: nobody reads it
    with pytest.raises(DeviceError, match=r"No such device or address; is an emulator still serving"):
        Mmio(mmio.mem_path, BASES, bell)
