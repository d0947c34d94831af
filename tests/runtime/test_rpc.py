"""The rpc backend end to end on loopback: golden vectors, a compiled conv layer, one round trip per synchronize,
the server's own verifier, timing, TLS with a token, and the --stdio mode over a local pipe."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import VECTORS
from tests.runtime import programs
from vta.errors import BackendError, DeviceBusy, RemoteError
from vta.runtime import Runtime
from vta.runtime.backends.remote import RemoteBackend
from vta.runtime.rpc import protocol
from vta.runtime.rpc.client import Connection
from vta.runtime.rpc.server import ServerConfig, TcpServer
from vta.sim.vector import load_vector

TOKEN = "a-test-token-of-enough-length"


@pytest.fixture
def server(tmp_path, env):
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env)).start()
    yield srv
    srv.stop()


def _url(srv: TcpServer) -> str:
    return f"tcp://127.0.0.1:{srv.address[1]}"


@pytest.fixture(scope="module")
def emulated_rt(board):
    from vta.config import get_env

    env = get_env()
    srv = TcpServer(ServerConfig(mode="emulate", token=TOKEN, env=env, emulator=board)).start()
    rt = Runtime("rpc", env=env, url=_url(srv), token=TOKEN)
    yield rt
    rt.close()
    srv.stop()


def _positive() -> list[str]:
    index = json.loads((VECTORS / "index.json").read_text())
    return [e["path"] for s, entries in index.items() if s != "negative" for e in entries]


@pytest.mark.parametrize("path", _positive())
def test_golden_vector_through_rpc_to_the_emulated_board(emulated_rt, vectors_dir, path):
    vector = load_vector(vectors_dir / path)
    buf = emulated_rt.alloc_at(vector.phys_base, len(vector.mem_in))
    try:
        buf.copy_from(vector.mem_in)
        emulated_rt.launch(buf, vector.meta["insn_offset"], vector.insn_count)
        assert np.array_equal(buf.copy_to(), vector.mem_out), f"{path}: image differs"
    finally:
        emulated_rt.free(buf)


def test_compiled_conv_layer_bit_exact_through_rpc(emulated_rt, rng):
    from tests.compiler.test_build import CONVS, _conv

    prog, a, w, want = _conv(*CONVS["3x3 s1 p1, oc threads"], rng)
    got = np.zeros(want.shape, np.int8)
    prog.run(a, w, got, runtime=emulated_rt)
    np.testing.assert_array_equal(got, want)


class Counting(Connection):
    """A connection that counts its round trips."""

    calls: list[str]

    def call(self, msg, timeout_s):
        self.calls.append(msg.KIND)
        return super().call(msg, timeout_s)


def test_one_round_trip_per_synchronize_in_the_steady_state(server, env, rng):
    with Runtime("rpc", env=env, url=_url(server), token=TOKEN) as rt:
        got, want = programs.matmul_tile(rt, rng)
        rt.backend.conn.__class__ = Counting
        rt.backend.conn.calls = []
        got, want = programs.matmul_tile(rt, rng)  # allocates 3 buffers, then one synchronize
        assert np.array_equal(got, want)
        assert rt.backend.conn.calls == ["alloc", "alloc", "alloc", "run"]
        rt.backend.conn.calls = []
        rt.queue.synchronize()
        assert rt.backend.conn.calls == ["run"]


def test_timing_and_counters_come_back(server, env, rng):
    with Runtime("rpc", env=env, url=_url(server), token=TOKEN) as rt, Runtime("sim", env=env) as local:
        programs.matmul_tile(rt, np.random.default_rng(5))
        programs.matmul_tile(local, np.random.default_rng(5))
        remote_t, local_t = rt.last_timing(), local.last_timing()
        assert (remote_t.cycles, remote_t.gemm_uops, remote_t.dram_bytes) == \
            (local_t.cycles, local_t.gemm_uops, local_t.dram_bytes)
        assert np.array_equal(remote_t.end, local_t.end)
        assert rt.backend.counters() == local.backend.counters()


def test_second_client_is_told_busy_and_served_after_the_first_leaves(server, env):
    first = RemoteBackend(env, url=_url(server), token=TOKEN)
    with pytest.raises(DeviceBusy, match=r"is busy: owned by pid \d+ \(vta rpc serve --sim for vta runtime at 127"):
        RemoteBackend(env, url=_url(server), token=TOKEN)
    first.close()
    RemoteBackend(env, url=_url(server), token=TOKEN).close()


def test_lock_is_shared_with_local_owners(server, env, tmp_path):
    from vta.driver.lock import DeviceLock

    with DeviceLock(tmp_path / "lock"), pytest.raises(DeviceBusy, match=r"busy: owned by pid \d+"):
        RemoteBackend(env, url=_url(server), token=TOKEN)


def test_url_and_option_errors(env):
    with pytest.raises(RemoteError, match=r"plain tcp is allowed only on loopback"):
        RemoteBackend(env, url="tcp://10.1.2.3:9091")
    with pytest.raises(RemoteError, match=r"the scheme must be tcp\+tls://, ssh://"):
        RemoteBackend(env, url="http://board:80")
    with pytest.raises(BackendError, match=r"give url='tcp\+tls://HOST:PORT'"):
        RemoteBackend(env)
    with pytest.raises(RemoteError, match=r"cannot connect to tcp://127.0.0.1:1"):
        RemoteBackend(env, url="tcp://127.0.0.1:1")
    with pytest.raises(RemoteError, match=r"^rpc: give token= or token_file=, not both$"):
        RemoteBackend(env, url="tcp://127.0.0.1:1", token="x", token_file="t")
    with pytest.raises(RemoteError, match=r"^rpc: cannot read the token file '/nonexistent/token'"):
        RemoteBackend(env, url="tcp://127.0.0.1:1", token_file="/nonexistent/token")


def test_registry_entry_is_real():
    from vta.runtime.backend import BACKENDS

    module, cls = BACKENDS["rpc"].split(":")
    assert getattr(__import__(module, fromlist=[cls]), cls) is RemoteBackend


# --- TLS service mode ----------------------------------------------------------------------------
def _self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1, made with the cryptography package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vta-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


@pytest.fixture
def tls_server(tmp_path, env):
    from vta.rpc_cli import _tls_context

    cert, key = _self_signed(tmp_path)
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env, hello_s=2.0),
                    tls=_tls_context(cert, key)).start()
    yield srv, cert
    srv.stop()


def test_tls_with_token_runs_bit_exact(tls_server, env, rng, tmp_path):
    srv, cert = tls_server
    (tmp_path / "token").write_text(TOKEN + "\n")
    with Runtime("rpc", env=env, host="127.0.0.1", port=srv.address[1], token_file=tmp_path / "token",
                 cafile=cert) as rt:
        got, want = programs.conv3x3_tile(rt, rng)
        assert np.array_equal(got, want)


def test_service_mode_from_the_command_line(env, rng, tmp_path):
    import re

    cert, key = _self_signed(tmp_path)
    (tmp_path / "token").write_text(TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--port", "0", "--cert", cert,
                             "--key", key, "--token-file", str(tmp_path / "token"), "--lock", str(tmp_path / "lock")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        match = re.match(r"vta rpc: serving sim on 127\.0\.0\.1:(\d+) with TLS$", proc.stdout.readline().strip())
        assert match
        with Runtime("rpc", env=env, url=f"tcp+tls://127.0.0.1:{match.group(1)}", token_file=tmp_path / "token",
                     cafile=cert) as rt:
            got, want = programs.matmul_tile(rt, rng)
            assert np.array_equal(got, want)
    finally:
        proc.terminate()
        proc.wait(10)


def test_stopping_the_emulated_service_removes_its_emulator():
    import re

    proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "rpc", "serve", "--emulate", "--insecure-loopback",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert re.match(r"vta rpc: serving emulate on 127\.0\.0\.1:\d+ ", proc.stdout.readline())
        (child,) = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        image = Path(Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[3].decode())
        assert image.name == "board.mem" and image.exists()
        proc.terminate()  # as systemctl stop or kill do
        assert proc.wait(10) == 0
        assert not image.parent.exists()  # the emulator was stopped and its DRAM image removed
    finally:
        proc.kill()
        proc.wait()


def test_tls_refuses_an_untrusted_certificate_and_a_wrong_token(tls_server, env):
    srv, cert = tls_server
    with pytest.raises(RemoteError, match=r"cannot connect to tcp\+tls://127.0.0.1:\d+: .*CERTIFICATE_VERIFY_FAILED"):
        RemoteBackend(env, url=f"tcp+tls://127.0.0.1:{srv.address[1]}", token=TOKEN)
    with pytest.raises(RemoteError, match=r"rpc server refused \(auth\): authentication failed"):
        RemoteBackend(env, url=f"tcp+tls://127.0.0.1:{srv.address[1]}", token="wrong", cafile=cert)
    with pytest.raises(RemoteError, match=r"rpc server refused \(auth\)"):
        RemoteBackend(env, url=f"tcp+tls://127.0.0.1:{srv.address[1]}", token="", cafile=cert)


# --- --stdio mode (what ssh runs), over a local pipe ---------------------------------------------
def test_stdio_mode_over_a_local_pipe(env, rng, tmp_path):
    command = [sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--stdio", "--lock", str(tmp_path / "lock")]
    with Runtime("rpc", env=env, url="stdio:", command=command) as rt:
        got, want = programs.conv3x3_tile(rt, rng)
        assert np.array_equal(got, want)
        assert rt.last_timing().cycles > 0
        process = rt.backend.conn.process
    assert process.wait(10) == 0


def test_emulated_board_served_over_stdio(env, rng):
    command = [sys.executable, "-m", "vta.cli", "rpc", "serve", "--emulate", "--stdio"]
    with Runtime("rpc", env=env, url="stdio:", command=command) as rt:
        assert "timing" not in rt.backend.capabilities and "recovery" in rt.backend.capabilities
        got, want = programs.matmul_tile(rt, rng)
        assert np.array_equal(got, want)


def test_bitstream_selection_needs_a_board(server, env):
    backend = RemoteBackend(env, url=_url(server), token=TOKEN)
    try:
        with pytest.raises(BackendError, match=r"^rpc backend has no bitstream selection \(capabilities: "):
            backend.select_bitstream("1x16_i8w8a32_15_15_18_17")
        with pytest.raises(BackendError, match=r"^sim backend has no bitstream selection"):  # the server refuses too
            backend.conn.call(protocol.Bitstream("anything"), 5.0)
    finally:
        backend.close()


def test_server_gone_mid_session(env, rng, tmp_path):
    command = [sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--stdio", "--lock", str(tmp_path / "lock")]
    rt = Runtime("rpc", env=env, url="stdio:", command=command)
    programs.matmul_tile(rt, rng)
    rt.backend.conn.process.kill()
    with pytest.raises(RemoteError, match=r"^rpc (peer closed the connection|pipe failed)"):
        programs.matmul_tile(rt, rng)
    rt.close()  # the session's buffers went with the server: closing does not fail
    assert rt.closed


def test_a_server_that_never_answers_times_out(env):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        start = time.monotonic()
        with pytest.raises(RemoteError, match=r"^rpc peer too slow: timed out waiting for the reply \(0 of 1 bytes\)$"):
            RemoteBackend(env, url=f"tcp://127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.5)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_cli_refuses_service_mode_without_tls(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "service mode needs --cert, --key and --token-file" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--insecure-loopback",
                        "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--insecure-loopback binds loopback addresses only, not 0.0.0.0" in r.stderr
    (tmp_path / "token").write_text("short")
    r = subprocess.run([sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--cert", "c", "--key", "k",
                        "--token-file", str(tmp_path / "token")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "the token must have at least 16 characters" in r.stderr


def test_protocol_version_is_in_every_frame():
    body = protocol.encode(protocol.Info())[4:]
    import msgpack

    assert msgpack.unpackb(body)[0] == protocol.VERSION



def test_a_device_that_cannot_be_recovered_stops_the_server(env, monkeypatch, capsys):
    """Without the rights to re-program the FPGA (the service's user), a hang cannot be recovered: the client
    is told, and the server stops with exit status 3 so that systemd restarts it and programs the FPGA."""
    from vta.driver.emulated import EmulatedBoard
    from vta.errors import DeviceError
    from vta.rpc_cli import _exit_status

    def refuse() -> str:
        raise DeviceError("pynq could not program the FPGA: PermissionError: [Errno 13] /lib/firmware")

    board = EmulatedBoard.start()  # its own: the module's shared board is held by another session
    monkeypatch.setattr(board, "reset", refuse)
    srv = TcpServer(ServerConfig(mode="emulate", token=TOKEN, env=env, emulator=board, max_run_s=0.3)).start()
    try:
        rt = Runtime("rpc", env=env, url=_url(srv), token=TOKEN)
        board.inject("hang")
        with pytest.raises(DeviceError, match=r"did not finish within 0\.3 s.*Recovery failed: pynq could not program "
                           r"the FPGA.*\(the server stops serving until it is restarted\)"):
            programs.matmul_tile(rt, np.random.default_rng(1))
        rt.close()
        srv._thread.join(5)
        assert not srv._thread.is_alive() and "Recovery failed" in srv.unrecoverable
    finally:
        srv.stop()
        board.stop()
    assert _exit_status(srv.unrecoverable) == 3 and _exit_status(None) == 0
    assert "vta rpc: stopped serving: " in capsys.readouterr().err


def test_runtime_without_a_url_uses_the_board_vta_rpc_url_names(server, env, monkeypatch, tmp_path):
    from vta.config import RemoteBoard, remote_board
    from vta.errors import ConfigError

    for name in ("VTA_RPC_URL", "VTA_RPC_TOKEN_FILE", "VTA_RPC_CAFILE", "VTA_RPC_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BackendError, match=r"or set VTA_RPC_URL$"):
        Runtime("rpc", env=env)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    monkeypatch.setenv("VTA_RPC_TOKEN_FILE", str(token))
    with pytest.raises(ConfigError, match=r"^VTA_RPC_TOKEN_FILE is set but VTA_RPC_URL is not"):
        Runtime("rpc", env=env)
    monkeypatch.setenv("VTA_RPC_URL", _url(server))
    assert remote_board() == RemoteBoard(_url(server), str(token))
    with Runtime("rpc", env=env) as rt:
        assert rt.backend.url == _url(server)
        got, want = programs.matmul_tile(rt, np.random.default_rng(2))
        assert np.array_equal(got, want)
    assert remote_board({"VTA_RPC_URL": "ssh://root@pynq", "VTA_RPC_COMMAND": "bash -lc 'vta rpc serve --stdio'"}
                        ).options()["command"] == ["bash -lc 'vta rpc serve --stdio'"]
