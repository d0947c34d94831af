import os
import sys

import pytest

from tests.bitstream.synth import make_bit, record_for
from vta.bitstream.program import program
from vta.bitstream.store import cache_path
from vta.cli import main
from vta.driver.lock import DeviceLock
from vta.errors import BitstreamError, BitstreamMismatch, DeviceBusy, DeviceError


def test_without_pynq_the_error_says_a_board_is_needed(monkeypatch, pynq_env):
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq fails, installed or not
    with pytest.raises(BitstreamError, match=r"^programming the FPGA needs the pynq library, which is not "
                       r"installed in .*: run this on a Pynq board, in the environment pynq is installed in \(on "
                       r"PYNQ 3\.x images the /usr/local/share/pynq-venv venv\), or install it with "
                       r"`pip install \"\.\[board\]\"` from the pynq-vta checkout$"):
        program(env=pynq_env)


def test_broken_pynq_install(monkeypatch, tmp_path, pynq_env):
    (tmp_path / "pynq").mkdir()
    (tmp_path / "pynq" / "__init__.py").write_text("import _vta_test_missing_dependency\n")
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BitstreamError, match=r"^the pynq library is installed but cannot be imported \(No module "
                       r"named '_vta_test_missing_dependency'\); programming the FPGA needs a Pynq board$"):
        program(env=pynq_env)


@pytest.mark.parametrize("target", ["sim", "de10nano"])
def test_targets_not_programmed_through_pynq(fake_pynq, pynq_env, target):
    with pytest.raises(BitstreamError, match=rf"^cannot program an FPGA for TARGET='{target}': pynq-vta programs "
                       r"TARGET in pynq, ultra96, zcu104 \(sim and tsim need no bitstream"):
        program(env=pynq_env.replace(TARGET=target))
    assert fake_pynq.downloads == []


def test_programs_a_verified_cached_file(vta_cache, fake_pynq, pynq_env):
    blob = make_bit()
    path = cache_path(pynq_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(blob)
    assert program(env=pynq_env, expected=record_for(blob, pynq_env)) == path
    assert fake_pynq.downloads == [str(path)]


def test_programs_a_user_build(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    assert program(path, user_env) == path
    assert fake_pynq.downloads == [str(path)]


def test_mismatching_file_is_never_downloaded(tmp_path, fake_pynq, pynq_env):
    path = tmp_path / "1x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    with pytest.raises(BitstreamMismatch, match=r"size mismatch: the file has 1131 bytes, the release "
                       r"pynq/0\.0\.2/1x16_i8w8a32_15_15_18_17\.bit needed by .* has 4045671 bytes$"):
        program(path, pynq_env)
    with pytest.raises(BitstreamMismatch, match=r"HW_VER '0\.0\.1' vs configured '0\.0\.2'$"):
        program(path, pynq_env, expected=record_for(make_bit(), pynq_env, hw_ver="0.0.1"))
    assert fake_pynq.downloads == []


def test_pynq_failure_becomes_bitstream_error(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    fake_pynq.failure = OSError(13, "Permission denied")
    with pytest.raises(BitstreamError, match=rf"^pynq could not program {path} onto the FPGA: PermissionError: "
                       r"\[Errno 13\] Permission denied$"):
        program(path, user_env)


def test_program_refuses_under_a_running_owner(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    lock = tmp_path / "dev.lock"
    with DeviceLock(lock) as owner:
        owner.describe("running a ResNet-18 layer")
        with pytest.raises(DeviceBusy, match=rf"^the VTA device is busy: owned by pid {os.getpid()} \(running a "
                           rf"ResNet-18 layer\) \(lock {lock}\); close that session \(or wait for it to finish\) and "
                           r"retry$"):
            program(path, user_env, lock=lock)
    assert fake_pynq.downloads == []
    assert program(path, user_env, lock=lock) == path  # free again: programs, holding the lock meanwhile
    assert fake_pynq.downloads == [str(path)]


def test_program_holds_the_lock_while_downloading(tmp_path, fake_pynq, user_env):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    seen = []

    def probe():
        with pytest.raises(DeviceBusy, match=r"owned by pid \d+ \(programming the FPGA with 2x16_i8w8a32_15_15_18_17"
                           r"\.bit\)"):
            DeviceLock(tmp_path / "dev.lock").acquire()
        seen.append(1)

    fake_pynq.on_download = probe
    program(path, user_env, lock=tmp_path / "dev.lock")
    assert seen == [1]
    held = DeviceLock(tmp_path / "dev.lock")
    with pytest.raises(DeviceError, match=r"^programming the FPGA needs the device lock .*dev\.lock held by the "
                       r"caller$"):
        program(path, user_env, lock=held)


def test_vta_program_refuses_while_a_runtime_owns_the_device(tmp_path, fake_pynq, user_env, capsys):
    path = tmp_path / "2x16_i8w8a32_15_15_18_17.bit"
    path.write_bytes(make_bit())
    with user_env, DeviceLock():  # the default lock, as a runtime on the board holds it
        assert main(["program", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vta program: error: the VTA device is busy: owned by pid {os.getpid()} (")
    assert fake_pynq.downloads == []
    with user_env:
        assert main(["program", str(path)]) == 0
    assert capsys.readouterr().out == f"FPGA programmed with {path}\n"


def test_sudo_finds_the_bitstream_the_user_fetched(tmp_path, monkeypatch, fake_pynq, pynq_env):
    """`vta bitstream fetch` as the user, then `sudo vta program`: sudo resets HOME, the file is still found."""
    import vta.config as config

    blob = make_bit()
    user_home, root_home = tmp_path / "xilinx", tmp_path / "root"
    fetched = user_home / ".vta_cache" / "pynq" / "0_0_2" / "1x16_i8w8a32_15_15_18_17.bit"
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(blob)
    root_home.mkdir()
    monkeypatch.delenv("VTA_CACHE_PATH", raising=False)
    monkeypatch.setenv("HOME", str(root_home))
    monkeypatch.setenv("SUDO_USER", "xilinx")
    monkeypatch.setattr(config.pwd, "getpwnam", lambda user: type("pw", (), {"pw_dir": str(tmp_path / user)}))
    assert program(env=pynq_env, expected=record_for(blob, pynq_env), lock=tmp_path / "l") == fetched
    assert fake_pynq.downloads == [str(fetched)]
    monkeypatch.delenv("SUDO_USER")
    with pytest.raises(BitstreamError, match=rf"^no bitstream file at {root_home}/\.vta_cache/pynq/0_0_2/"):
        program(env=pynq_env, expected=record_for(blob, pynq_env), lock=tmp_path / "l")
