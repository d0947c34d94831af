"""board_scripts/service.sh: the dry run's commands, the unit it renders (parsed and checked by
``systemd-analyze verify``), its refusals, and the unit's own ``vta rpc serve`` line serving an
emulated board to ``Runtime("rpc", ...)`` with the token and certificate the script's commands make."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.board_scripts.conftest import SCRIPTS
from tests.board_scripts.test_scripts import _commands
from tests.runtime import programs
from vta.runtime import Runtime

HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/tmp", "ProtectHome": "yes",
    "DevicePolicy": "closed", "AmbientCapabilities": "CAP_SYS_RAWIO", "CapabilityBoundingSet": "CAP_SYS_RAWIO",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "SystemCallFilter": "@system-service", "UMask": "0022",
    "SystemCallErrorNumber": "EPERM", "ProtectProc": "invisible", "PrivateMounts": "yes", "RemoveIPC": "yes",
}


def _dry_install(fake, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return fake.run("service.sh", "install", *args, "--dry-run", env=env)


def _written(stdout: str, dest: str) -> str:
    """The content a dry run prints for the file it would write to ``dest``."""
    match = re.search(rf"^\+ install -m 644 /dev/stdin {re.escape(dest)} <<EOF\n(.*?)^EOF$", stdout, re.S | re.M)
    assert match, f"no content printed for {dest}"
    return match.group(1)


def _parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat, as DeviceAllow= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return sections


def test_install_dry_run_prints_every_command_and_file(fake_pynq):
    proc = _dry_install(fake_pynq, "--listen", "192.168.2.99:9091")
    assert _commands(proc.stdout, fake_pynq) == [
        ". $IMAGE/xrt_setup.sh",
        "$VENV/bin/python3 -m pip install --disable-pip-version-check 'msgpack>=1.0'",
        "$VENV/bin/python3 -c 'from vta.bitstream.store import cache_path; print(cache_path())'",
        "$VENV/bin/vta bitstream verify '<cached-bitstream>'",
        "useradd --system --user-group --home-dir /var/lib/vta-rpc --no-create-home --shell /usr/sbin/nologin vta-rpc",
        "install -d -m 700 -o vta-rpc -g vta-rpc /etc/vta-rpc",
        "$VENV/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > /etc/vta-rpc/token",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=192.168.2.99 "
        "-addext subjectAltName=IP:192.168.2.99 -keyout /etc/vta-rpc/key.pem -out /etc/vta-rpc/cert.pem",
        "chmod 644 /etc/vta-rpc/cert.pem",
        "chown vta-rpc:vta-rpc /etc/vta-rpc/token /etc/vta-rpc/cert.pem /etc/vta-rpc/key.pem",
        "install -m 644 /dev/stdin /etc/udev/rules.d/60-vta-rpc.rules <<EOF",
        "udevadm control --reload",
        "udevadm trigger --action=change --subsystem-match=mem --sysname-match=mem",
        "install -m 644 /dev/stdin /etc/systemd/system/vta-rpc.service <<EOF",
        "systemctl daemon-reload",
        "systemctl enable vta-rpc.service",
        "systemctl restart vta-rpc.service",
    ]
    assert _written(proc.stdout, "/etc/udev/rules.d/60-vta-rpc.rules").splitlines()[1:] == [
        'SUBSYSTEM=="mem", KERNEL=="mem", GROUP="vta-rpc", MODE="0660"']
    # how a host connects, with the address chosen
    assert proc.stdout.splitlines()[-1] == ('  rt = Runtime("rpc", url="tcp+tls://192.168.2.99:9091", '
                                            'cafile="vta-cert.pem", token_file="vta-token")')
    assert not (fake_pynq.root / "xrt-sourced.log").exists()  # nothing ran


def test_the_rendered_unit_serves_the_chosen_address_unprivileged(fake_pynq):
    unit = _parse_unit(_written(_dry_install(fake_pynq, "--listen", "192.168.2.99:9091").stdout,
                                "/etc/systemd/system/vta-rpc.service"))
    service = unit["Service"]
    assert service["User"] == ["vta-rpc"] and service["Group"] == ["vta-rpc"]
    vta = f"{fake_pynq.venv}/bin/vta"
    assert service["ExecStart"] == [
        f"{vta} rpc serve --host 192.168.2.99 --port 9091 --cert /etc/vta-rpc/cert.pem --key /etc/vta-rpc/key.pem "
        "--token-file /etc/vta-rpc/token --lock /tmp/vta-pynq.lock"]
    # only programming the FPGA runs as root ("+"), with the checksum-verified cached bitstream
    assert service["ExecStartPre"] == [f"+{vta} program --lock /tmp/vta-pynq.lock <cached-bitstream>"]
    assert service["DeviceAllow"] == ["/dev/mem rw", "char-drm rw"]
    assert {key: service[key] for key in HARDENING} == {key: [value] for key, value in HARDENING.items()}
    assert "PrivateTmp" not in service and "PrivateDevices" not in service  # why: docs/board.md
    assert service["Environment"] == ["XILINX_XRT=/usr", "HOME=/var/lib/vta-rpc", "XDG_CACHE_HOME=/var/cache/vta-rpc"]
    assert unit["Install"] == {"WantedBy": ["multi-user.target"]}
    text = "\n".join(v for values in service.values() for v in values)
    assert "0.0.0.0" not in text and "--insecure-loopback" not in text


def test_the_rendered_unit_passes_systemd_analyze_verify(fake_pynq, tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (it comes with systemd)")
    venv = Path(sys.prefix)  # a venv whose bin/vta exists: verify checks the executables
    proc = _dry_install(fake_pynq, "--listen", "127.0.0.1:9091", env={"PYNQ_VTA_VENV": str(venv)})
    unit = tmp_path / "vta-rpc.service"
    unit.write_text(_written(proc.stdout, "/etc/systemd/system/vta-rpc.service"))
    check = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    assert (check.returncode, check.stderr) == (0, "")


def test_the_exposure_docs_board_md_states_is_systemds(fake_pynq, tmp_path):
    """The number the page gives is what `systemd-analyze security` says of the rendered unit."""
    tool = shutil.which("systemd-analyze")
    doc = re.search(r"`systemd-analyze security` \(of\s+systemd (\d+)\) rates the unit's exposure (\d+\.\d), \"OK\"",
                    (SCRIPTS.parent / "docs" / "board.md").read_text())
    assert doc, "docs/board.md no longer states the exposure"
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.split()[1] if tool else ""
    if version != doc.group(1):
        pytest.skip(f"the page's number is systemd {doc.group(1)}'s; here: {version or 'no systemd-analyze'}")
    proc = _dry_install(fake_pynq, "--listen", "127.0.0.1:9091", env={"PYNQ_VTA_VENV": sys.prefix})
    unit = tmp_path / "vta-rpc.service"
    unit.write_text(_written(proc.stdout, "/etc/systemd/system/vta-rpc.service"))
    out = subprocess.run([tool, "security", "--offline=yes", str(unit)], capture_output=True, text=True).stdout
    assert re.search(r"Overall exposure level for vta-rpc\.service: (\d+\.\d) OK", out).group(1) == doc.group(2)


@pytest.mark.parametrize("listen", ["0.0.0.0:9091", "[::]:9091", "0:9091", "[0::0]:9091"])
def test_every_interface_is_refused_unless_forced(fake_pynq, listen):
    proc = fake_pynq.run("service.sh", "install", "--listen", listen, "--dry-run", check=False)
    assert (proc.returncode, proc.stdout.count("\n+ ")) == (1, 0)
    assert proc.stderr == (f"service.sh: error: --listen {listen} binds every network interface of the board; give "
                           "the address of the network the hosts use, or add --any-address if you mean every "
                           "interface\n")
    proc = _dry_install(fake_pynq, "--listen", listen, "--any-address")
    assert f"service.sh: warning: --listen {listen} binds every network interface" in proc.stdout
    assert "--port 9091 " in _written(proc.stdout, "/etc/systemd/system/vta-rpc.service")


@pytest.mark.parametrize(("args", "error"), [
    ([], "install needs --listen ADDRESS:PORT, the address hosts reach the board on (e.g. 192.168.2.99:9091; "
         "`ip -brief address` lists the board's)"),
    (["--listen", "192.168.2.99"], "--listen 192.168.2.99: expected ADDRESS:PORT, e.g. 192.168.2.99:9091"),
    (["--listen", "192.168.2.99:0"], "--listen 192.168.2.99:0: the port must be a number in 1..65535"),
    (["--listen", "192.168.2.99:http"], "--listen 192.168.2.99:http: the port must be a number in 1..65535"),
    (["--listen", "fd00::2:9091"], "--listen fd00::2:9091: write an IPv6 address in brackets, e.g. [fd00::2]:9091"),
    (["--listen", ":9091"], "--listen :9091: no address before the port"),
    (["--listen", "a;b:9091"], "--listen a;b:9091: 'a;b' is not an IP address or host name"),
    (["--listen", "10.0.0.2:9091", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
])
def test_bad_install_arguments_are_refused(fake_pynq, args, error):
    proc = fake_pynq.run("service.sh", "install", *args, "--dry-run", check=False)
    assert (proc.returncode, proc.stderr) == (1, f"service.sh: error: {error}\n")


def test_ipv6_given_files_and_a_short_token(fake_pynq, tmp_path):
    (tmp_path / "token").write_text("x" * 40 + "\n")
    proc = _dry_install(fake_pynq, "--listen", "[fd00::2]:9091", "--token-file", str(tmp_path / "token"),
                        "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    cmds = _commands(proc.stdout, fake_pynq)
    assert cmds[6:9] == [f"install -m {mode} -o vta-rpc -g vta-rpc {tmp_path}/{name} /etc/vta-rpc/{dest}"
                         for mode, name, dest in (("600", "token", "token"), ("644", "cert.pem", "cert.pem"),
                                                  ("600", "key.pem", "key.pem"))]
    assert "--host fd00::2 --port 9091 " in _written(proc.stdout, "/etc/systemd/system/vta-rpc.service")
    assert 'url="tcp+tls://[fd00::2]:9091"' in proc.stdout
    (tmp_path / "token").write_text("too short\n")
    proc = fake_pynq.run("service.sh", "install", "--listen", "10.0.0.2:9091", "--token-file",
                         str(tmp_path / "token"), "--dry-run", check=False)
    assert (proc.returncode, proc.stderr) == (1, f"service.sh: error: --token-file {tmp_path}/token: the token must "
                                                 "have at least 16 characters\n")


def test_a_given_certificate_for_another_address_is_named(fake_pynq, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=10.0.0.2", "-addext", "subjectAltName=IP:10.0.0.2", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    for listen, warned in (("10.0.0.2:9091", False), ("10.0.0.3:9091", True), ("[fd00::2]:9091", True)):
        out = _dry_install(fake_pynq, "--listen", listen, "--tls-cert", str(cert), "--tls-key", str(key)).stdout
        host = listen.rsplit(":", 1)[0].strip("[]")
        assert (f"service.sh: warning: {cert} is not for {host}: hosts must connect with a name or address it "
                "names\n" in out) is warned


def test_uninstall_and_status_dry_runs(fake_pynq):
    cmds = _commands(fake_pynq.run("service.sh", "uninstall", "--dry-run").stdout, fake_pynq)
    assert cmds == [
        "systemctl disable --now vta-rpc.service", "rm -f /etc/systemd/system/vta-rpc.service",
        "systemctl daemon-reload", "rm -f /etc/udev/rules.d/60-vta-rpc.rules", "udevadm control --reload",
        "udevadm trigger --action=change --subsystem-match=mem --sysname-match=mem", "rm -rf /etc/vta-rpc",
        "rm -rf /var/lib/vta-rpc", "rm -rf /var/cache/vta-rpc", "userdel vta-rpc",
    ]
    assert _commands(fake_pynq.run("service.sh", "status", "--dry-run").stdout, fake_pynq) == [
        "systemctl status --no-pager vta-rpc.service"]


def test_uninstall_sh_removes_the_service_first_and_diagnostics_reports_it(fake_pynq, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    env = {"PYNQ_VTA_UNIT_DIR": str(units)}
    out = fake_pynq.run("diagnostics.sh", "--no-selftest", env=env).stdout
    assert f"## rpc service\n(not installed: no {units}/vta-rpc.service)\n" in out
    assert _commands(fake_pynq.run("uninstall.sh", "--dry-run", env=env).stdout, fake_pynq) == [
        "$VENV/bin/python3 -m pip show --disable-pip-version-check pynq-vta",
        "$VENV/bin/python3 -m pip uninstall --disable-pip-version-check -y pynq-vta"]
    (units / "vta-rpc.service").write_text("[Service]\nExecStart=/bin/true\n")
    cmds = _commands(fake_pynq.run("uninstall.sh", "--dry-run", env=env).stdout, fake_pynq)
    assert cmds[:4] == [f"bash {SCRIPTS}/service.sh uninstall", "systemctl disable --now vta-rpc.service",
                        f"rm -f {units}/vta-rpc.service", "systemctl daemon-reload"]
    assert cmds[-3:] == ["userdel vta-rpc", "$VENV/bin/python3 -m pip show --disable-pip-version-check pynq-vta",
                         "$VENV/bin/python3 -m pip uninstall --disable-pip-version-check -y pynq-vta"]
    out = fake_pynq.run("diagnostics.sh", "--no-selftest", "--dry-run", env=env).stdout
    assert f"+ grep -E '^(ExecStart|User|SupplementaryGroups)=' {units}/vta-rpc.service\n" in out


@pytest.mark.parametrize(("args", "error"), [
    ([], "missing the command: install, uninstall or status (see --help)"),
    (["start"], "unknown command 'start': expected install, uninstall or status (see --help)"),
    (["install", "--bogus"], "unknown argument '--bogus' (see --help)"),
    (["uninstall", "--listen", "10.0.0.2:9091"], "uninstall takes no --listen, --token-file, --tls-cert or --tls-key "
                                                  "(see --help)"),
])
def test_bad_commands_are_refused(fake_pynq, args, error):
    proc = fake_pynq.run("service.sh", *args, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"service.sh: error: {error}\n")


def test_install_and_uninstall_need_root(fake_pynq):
    as_user = [] if os.geteuid() else ["runuser", "-u", "nobody", "--"]
    for args in (["install", "--listen", "10.0.0.2:9091"], ["uninstall"]):
        proc = subprocess.run([*as_user, "bash", str(SCRIPTS / "service.sh"), *args], env=fake_pynq.env, cwd="/",
                              capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (1, f"service.sh: error: run as root: sudo bash "
                                                     f"{SCRIPTS / 'service.sh'} {' '.join(args)}\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_units_serve_command_serves_an_emulated_board(fake_pynq, tmp_path):
    """The unit's ExecStart, with only --emulate added, serves Runtime("rpc", ...) with the token and the
    certificate made by the commands the dry run prints (run here with the same arguments)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    port = _free_port()
    conf = tmp_path / "etc-vta-rpc"
    conf.mkdir(mode=0o700)
    proc = _dry_install(fake_pynq, "--listen", f"127.0.0.1:{port}",
                        env={"PYNQ_VTA_VENV": sys.prefix, "PYNQ_VTA_SERVICE_CONF": str(conf)})
    printed = [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]
    token_cmd = next(c for c in printed if "secrets.token_urlsafe" in c)
    cert_cmd = next(c for c in printed if c.startswith("openssl req "))
    words = shlex.split(token_cmd)
    assert words[-2:] == [">", str(conf / "token")]
    (conf / "token").write_text(subprocess.run(words[:-2], check=True, capture_output=True, text=True).stdout)
    (conf / "token").chmod(0o600)
    subprocess.run(shlex.split(cert_cmd), check=True, capture_output=True)
    assert len((conf / "token").read_text().strip()) >= 43  # 32 random bytes, base64

    service = _parse_unit(_written(proc.stdout, "/etc/systemd/system/vta-rpc.service"))["Service"]
    (exec_start,) = service["ExecStart"]
    server = subprocess.Popen([*shlex.split(exec_start), "--emulate"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().strip() == f"vta rpc: serving emulate on 127.0.0.1:{port} with TLS"
        rng = np.random.default_rng(7)
        with Runtime("rpc", url=f"tcp+tls://127.0.0.1:{port}", cafile=str(conf / "cert.pem"),
                     token_file=str(conf / "token")) as rt:
            got, want = programs.matmul_tile(rt, rng)
            assert np.array_equal(got, want)
        server.terminate()  # what systemctl stop sends
        assert server.wait(10) == 0
    finally:
        server.kill()
        server.wait()
