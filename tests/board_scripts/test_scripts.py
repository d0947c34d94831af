"""board_scripts/: shellcheck, --help, argument errors, refusals, and what each dry run would run."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.board_scripts.conftest import ROOT, SCRIPTS, make_fake_pynq, shellcheck

SCRIPT_NAMES = ("install.sh", "uninstall.sh", "diagnostics.sh")  # service.sh: test_service.py


def _commands(stdout: str, fake) -> list[str]:
    """The '+ ' lines of a script's output, the fake image's paths shortened to $VENV and $IMAGE."""
    return [line[2:].replace(str(fake.venv), "$VENV").replace(str(fake.root), "$IMAGE")
            for line in stdout.splitlines() if line.startswith("+ ")]


def test_shellcheck_reports_nothing():
    scripts = sorted(p.name for p in SCRIPTS.glob("*.sh"))
    assert scripts == ["common.sh", "diagnostics.sh", "install.sh", "service.sh", "uninstall.sh"]
    proc = subprocess.run([shellcheck(), "-x", *(f"board_scripts/{s}" for s in scripts)], cwd=ROOT,
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize("script", [*SCRIPT_NAMES, "service.sh"])
def test_help(fake_pynq, script):
    out = fake_pynq.run(script, "--help").stdout
    assert out.startswith(f"Usage: sudo bash {script} ")
    assert "\n  --dry-run  " in out and "\n  -h, --help " in out


@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_unknown_argument_is_refused(fake_pynq, script):
    proc = fake_pynq.run(script, "--bogus", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"{script}: error: unknown argument '--bogus' "
                                                                  "(see --help)\n")


@pytest.mark.parametrize("script", [*SCRIPT_NAMES, "service.sh"])
def test_sh_is_told_to_use_bash(fake_pynq, script):
    """The old install.sh was run with `sh`; these need bash, and dash stops on the first bash-only line."""
    if subprocess.run(["sh", "-c", "echo ${BASH_VERSION:-}"], capture_output=True, text=True).stdout.strip():
        pytest.skip("sh is bash here, which runs the scripts")
    proc = subprocess.run(["sh", str(SCRIPTS / script), "--help"], env=fake_pynq.env, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"{script}: run it with bash: sudo bash "
                                                                  f"{SCRIPTS / script}\n")


def test_install_dry_run_prints_every_step_and_runs_none(fake_pynq):
    proc = fake_pynq.run("install.sh", "--dry-run")
    assert _commands(proc.stdout, fake_pynq) == [
        ". $IMAGE/xrt_setup.sh",
        "$VENV/bin/python3 -c 'import sys, importlib.metadata as m; v = m.version(\"pynq\"); print(\"Python\""
        ", sys.version.split()[0] + \", pynq\", v); sys.exit(sys.version_info < (3, 10) or int(v.split(\".\")[0]) "
        "< 3)'",
        f"$VENV/bin/python3 -m pip install --disable-pip-version-check '{ROOT}[board]'",
        "$VENV/bin/python3 -c 'from vta.driver import _ffi; print(_ffi.load().__file__)'",
        "$VENV/bin/vta info",
        "$VENV/bin/vta bitstream fetch",
        "$VENV/bin/vta bitstream verify",
        "$VENV/bin/vta selftest",
    ]
    assert proc.stdout.splitlines()[0] == "install.sh: dry run: printing the commands without running them"
    assert proc.stdout.splitlines()[-1] == "install.sh: dry run done: nothing was run"
    # Nothing ran: no package in the environment, no cache, and the XRT set-up was not even sourced.
    site = next(fake_pynq.venv.glob("lib/python*/site-packages"))
    assert sorted(p.name for p in site.iterdir()) == ["image-packages.pth", "pynq", "pynq-3.0.1.dist-info"]
    assert not (fake_pynq.root / "cache").exists() and not (fake_pynq.root / "xrt-sourced.log").exists()


def test_install_dry_run_options(fake_pynq, tmp_path):
    wheel = tmp_path / "pynq_vta-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    bit = tmp_path / "1x16_i8w8a32_15_15_18_17.bit"
    bit.write_bytes(b"")
    proc = fake_pynq.run("install.sh", "--dry-run", "--offline", "--source", str(wheel), "--bitstream", str(bit),
                         "--emulate")
    cmds = _commands(proc.stdout, fake_pynq)
    assert cmds[2:] == [
        "$VENV/bin/python3 -m pip uninstall --disable-pip-version-check -y pynq-vta",
        "$VENV/bin/python3 -m pip install --disable-pip-version-check --no-index --no-build-isolation "
        f"'{wheel}[board]'",
        "$VENV/bin/python3 -c 'from vta.driver import _ffi; print(_ffi.load().__file__)'",
        "$VENV/bin/vta info",
        f"$VENV/bin/vta bitstream verify {bit}",
        "$VENV/bin/python3 -c 'from vta.bitstream.store import cache_path; print(cache_path())'",
        f"cmp -s {bit} '<dry run>'",
        f"install -D -m 644 {bit} '<dry run>'",
        "$VENV/bin/vta bitstream verify",
        "$VENV/bin/vta selftest --emulate",
    ]


def test_uninstall_and_diagnostics_dry_runs(fake_pynq):
    cmds = _commands(fake_pynq.run("uninstall.sh", "--dry-run", "--purge").stdout, fake_pynq)
    assert cmds == [
        "$VENV/bin/python3 -c 'from vta.driver import _ffi; print(_ffi.cache_root())'",
        "rm -rf '<the directory printed above>'",
        "$VENV/bin/python3 -c 'from vta.bitstream.store import cache_path; print(cache_path())'",
        "rm -f '<the file printed above>'",
        "$VENV/bin/python3 -m pip show --disable-pip-version-check pynq-vta",
        "$VENV/bin/python3 -m pip uninstall --disable-pip-version-check -y pynq-vta",
    ]
    out = fake_pynq.run("diagnostics.sh", "--dry-run", "--lock", "/nonexistent/vta.lock").stdout
    cmds = _commands(out, fake_pynq)
    assert cmds[0] == ". $IMAGE/xrt_setup.sh"
    assert cmds[1:] == [
        "cat /boot/REVISION", "grep PRETTY_NAME /etc/os-release", "cat /proc/device-tree/model", "uname -a",
        "grep -i cma /proc/meminfo", "$VENV/bin/python3 --version",
        "$VENV/bin/python3 -m pip show --disable-pip-version-check pynq pynq-vta numpy cffi", "$VENV/bin/vta info",
        "$VENV/bin/python3 -c 'from vta.driver import _ffi; print(_ffi.load().__file__)'",
        "$VENV/bin/vta bitstream list", "$VENV/bin/vta bitstream verify", "cat /sys/class/fpga_manager/fpga0/state",
        "flock -n /nonexistent/vta.lock true", "cat /nonexistent/vta.lock", "systemctl is-active vta-rpc.service",
        "systemctl status --no-pager --lines=20 vta-rpc.service",
        "grep -E '^(ExecStart|User|SupplementaryGroups)=' /etc/systemd/system/vta-rpc.service",
        "$VENV/bin/vta selftest",
    ]
    assert [line for line in out.splitlines() if line.startswith("## ")] == [
        "## image and board", f"## Python environment {fake_pynq.venv}", "## pynq-vta", "## bitstream",
        "## device lock", "## rpc service", "## selftest"]


def test_install_refuses_an_environment_without_pynq_3(tmp_path):
    old = make_fake_pynq(tmp_path / "old", pynq_version="2.7.0")
    proc = old.run("install.sh", "--emulate", check=False)
    assert proc.returncode == 1
    assert re.fullmatch(rf"install\.sh: error: {re.escape(str(old.venv))} needs Python >= 3\.10 and pynq >= 3\.0 \(a "
                        r"stock PYNQ 3\.x image has both\); found: Python 3\.\d+\.\d+, pynq 2\.7\.0\n", proc.stderr)
    assert "pip install" not in proc.stdout


def test_install_refuses_a_missing_environment_and_source(fake_pynq, tmp_path):
    proc = fake_pynq.run("install.sh", "--emulate", env={"PYNQ_VTA_VENV": str(tmp_path / "none")}, check=False)
    assert (proc.returncode, proc.stderr) == (1, f"install.sh: error: no Python interpreter at {tmp_path}/none/bin/"
                                                 "python3: this script is for a stock PYNQ 3.x image, whose virtual "
                                                 f"environment is {tmp_path}/none (set PYNQ_VTA_VENV to use another)\n")
    proc = fake_pynq.run("install.sh", "--emulate", "--source", str(tmp_path / "nothing.whl"), check=False)
    assert (proc.returncode, proc.stderr) == (1, f"install.sh: error: --source {tmp_path}/nothing.whl: no such file "
                                                 "or directory\n")
    proc = fake_pynq.run("install.sh", "--emulate", "--source", str(tmp_path), check=False)
    assert (proc.returncode, proc.stderr) == (1, f"install.sh: error: --source {tmp_path}: expected a pynq-vta "
                                                 "checkout (with pyproject.toml), a .whl or a .tar.gz\n")


def test_install_and_uninstall_on_the_board_need_root(fake_pynq):
    """As another user (``nobody`` when the tests run as root), only a dry run or --emulate goes ahead."""
    as_user = [] if os.geteuid() else ["runuser", "-u", "nobody", "--"]
    for script, args in (("install.sh", ["--offline"]), ("uninstall.sh", [])):
        proc = subprocess.run([*as_user, "bash", str(SCRIPTS / script), *args], env=fake_pynq.env, cwd="/",
                              capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (1, f"{script}: error: run as root: sudo bash {SCRIPTS / script}"
                                                     f"{' ' if args else ''}{' '.join(args)}\n")
