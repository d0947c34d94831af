"""The board scripts for real, in a fake PYNQ 3.x image: install a local wheel, again, refuse a wrong
bitstream, collect diagnostics, uninstall (twice). The self-test runs on the emulated board."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.bitstream.synth import make_bit
from tests.board_scripts.conftest import ROOT, make_fake_pynq
from vta.driver.lock import DeviceLock

pytestmark = pytest.mark.slow

USER_BIT = "1x16_i8w8a32_15_15_18_16.bit"  # LOG_ACC_BUFF_SIZE 16: never released, so only name and header are checked


def _user_build_config(path):
    cfg = json.loads((ROOT / "core" / "configs" / "pynq_sample.json").read_text())
    cfg["LOG_ACC_BUFF_SIZE"] = 16
    path.write_text(json.dumps(cfg))
    return path


def _venv_python(fake, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(fake.venv / "bin" / "python3"), "-c", code], env=fake.env, cwd="/", text=True,
                          capture_output=True)


def test_install_diagnose_uninstall_from_a_local_wheel(wheel, tmp_path):
    fake = make_fake_pynq(tmp_path / "image")
    user = {"VTA_CONFIG": str(_user_build_config(tmp_path / "user.json"))}
    bit = tmp_path / USER_BIT
    bit.write_bytes(make_bit())
    cached = fake.root / "cache" / "pynq" / "0_0_2" / USER_BIT

    out = fake.run("install.sh", "--source", str(wheel), "--bitstream", str(bit), "--emulate", env=user).stdout
    site = next(fake.venv.glob("lib/python*/site-packages"))
    summary = out[out.index("install.sh: done:\n"):].splitlines()[1:]
    assert summary[0].startswith(f"  environment: {fake.venv} (Python 3.") and summary[0].endswith(", pynq 3.0.1)")
    assert summary[1:] == [
        f"  installed: pynq-vta from the wheel {wheel} into {fake.venv}",
        f"  driver: {next(site.glob('vta/driver/_vta_driver*.so'))}",
        f"  bitstream: verified in the cache (from {bit})",
        "  selftest: passed (vta selftest --emulate)",
    ]
    assert "ok   alu_add" in out and "ok   gemm" in out and f"ok: {cached} is a user build" in out
    assert cached.read_bytes() == bit.read_bytes()
    assert (fake.root / "xrt-sourced.log").read_text() == "sourced\n"
    assert _venv_python(fake, "import vta; print(vta.__file__)").stdout == f"{site}/vta/__init__.py\n"

    again = fake.run("install.sh", "--source", str(wheel), "--bitstream", str(bit), "--emulate", env=user).stdout
    assert f"install.sh: {cached} is already this file\n" in again
    assert again[again.index("install.sh: done:\n"):].splitlines()[1:] == summary

    # The released configuration's bitstream must match the release: a synthetic one is refused, nothing cached.
    wrong = tmp_path / "1x16_i8w8a32_15_15_18_17.bit"
    wrong.write_bytes(make_bit())
    proc = fake.run("install.sh", "--source", str(wheel), "--bitstream", str(wrong), "--emulate",
                    env={"VTA_TARGET": "pynq"}, check=False)
    assert proc.returncode == 1
    assert "size mismatch" in proc.stderr or "sha256 mismatch" in proc.stderr, proc.stderr
    assert proc.stderr.endswith(f"install.sh: error: {wrong} is not the bitstream this configuration needs (see "
                                "above); nothing was copied\n")
    assert sorted(p.name for p in cached.parent.iterdir()) == [USER_BIT]

    lock_path = tmp_path / "vta.lock"
    with DeviceLock(lock_path):
        report = fake.run("diagnostics.sh", "--emulate", "--lock", str(lock_path), env=user).stdout
    assert f"held by pid {os.getpid()}\n+ ps -o pid,user,lstart,args -p {os.getpid()}\n" in report
    assert f"ok: {cached} is a user build" in report and "ok   gemm" in report
    assert "Name: pynq-vta\nVersion: 0.1.0\n" in report and "(exit status" not in report.split("## pynq-vta")[1]
    free = fake.run("diagnostics.sh", "--no-selftest", "--lock", str(lock_path), env=user).stdout
    assert f"free: no process holds {lock_path}\n" in free and free.endswith("(skipped: --no-selftest)\n")

    out = fake.run("uninstall.sh", "--purge", env=user).stdout
    assert f"  removed the cached bitstream {cached}\n  uninstalled pynq-vta from {fake.venv}\n" in out
    assert not cached.exists() and not (fake.venv / "bin" / "vta").exists() and not (site / "vta").exists()
    assert _venv_python(fake, "import numpy, cffi, pynq").returncode == 0  # the image's packages stay
    out = fake.run("uninstall.sh").stdout
    assert out.splitlines()[1:] == [f"uninstall.sh: pynq-vta is not installed in {fake.venv}: nothing to uninstall",
                                    "uninstall.sh: done:"]
