"""Abuse of ``vta rpc serve`` on loopback, bounded in count and time: the server answers or hangs up, never
crashes, never hangs, never runs an unverified program, and serves the next client afterwards."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tests.conftest import VECTORS
from tests.runtime import programs
from vta.errors import PROGRAM_ERRORS, BackendError, DeviceBusy, DeviceError, ProgramError, RemoteError
from vta.runtime import Runtime
from vta.runtime.backends.remote import RemoteBackend
from vta.runtime.rpc import protocol
from vta.runtime.rpc.server import ServerConfig, TcpServer
from vta.sim.vector import load_vector

TOKEN = "abuse-test-token-0123456789"


@pytest.fixture
def server(tmp_path, env):
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env,
                                 hello_s=1.0, frame_s=1.0, idle_s=3.0)).start()
    yield srv
    srv.stop()


def _raw(srv: TcpServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.address[1]), timeout=5)
    sock.settimeout(5)
    return sock


def _reply(sock: socket.socket) -> protocol.Message | None:
    """The server's next reply, or None when it hung up."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) >= 4 and len(data) >= 4 + protocol.HEADER.unpack(data[:4])[0]:
            break
    if not data:
        return None
    return protocol.decode(data[4:4 + protocol.HEADER.unpack(data[:4])[0]], protocol.REPLIES)


def _hung_up(sock: socket.socket) -> bool:
    return sock.recv(1) == b""


def _serves(srv: TcpServer, env, deadline_s: float = 5.0) -> None:
    """A well-behaved client still gets a correct result (retrying while the last session releases the device)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with Runtime("rpc", env=env, url=f"tcp://127.0.0.1:{srv.address[1]}", token=TOKEN) as rt:
                got, want = programs.matmul_tile(rt, np.random.default_rng(0))
                assert np.array_equal(got, want)
                return
        except DeviceBusy:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def _hello(sock: socket.socket, token: str = TOKEN) -> protocol.Message | None:
    sock.sendall(protocol.encode(protocol.Hello(token, "abuser")))
    return _reply(sock)


def test_no_credentials_is_cut_off(server, env):
    sock = _raw(server)
    start = time.monotonic()
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and "too slow: timed out waiting for a request" in reply.message
    assert time.monotonic() - start < 3 and _hung_up(sock)
    _serves(server, env)


def test_wrong_credentials_and_a_request_before_hello(server, env):
    sock = _raw(server)
    reply = _hello(sock, "not-the-token")
    assert isinstance(reply, protocol.Err) and reply.error == "auth" and _hung_up(sock)
    sock = _raw(server)
    sock.sendall(protocol.encode(protocol.Alloc(4096, -1)))
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and "the first request must be hello, got alloc" in reply.message
    _serves(server, env)


V = protocol.VERSION


@pytest.mark.parametrize("body", [
    b"\xc1garbage", b"\x00" * 64, msgpack.packb([V, "hello"]), msgpack.packb([V + 1, "hello", {}]),
    msgpack.packb([V, "hello", {"token": 5, "client": "x"}]), msgpack.packb([V, "hello", {"token": TOKEN}]),
    msgpack.packb([V, "exec", {"code": "import os"}]), msgpack.packb([V, "hello", {"token": msgpack.ExtType(1, b"x"),
                                                                                   "client": "x"}]),
], ids=["bad-byte", "zeros", "short", "version", "type", "fields", "kind", "ext"])
def test_garbage_frames_are_refused(server, env, body):
    sock = _raw(server)
    sock.sendall(protocol.frame(body))
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and reply.error == "protocol" and reply.message.startswith("rpc ")
    assert _hung_up(sock)
    _serves(server, env)


def test_truncated_frame_then_disconnect(server, env):
    sock = _raw(server)
    sock.sendall(protocol.HEADER.pack(100) + b"x" * 10)
    sock.close()
    _serves(server, env)


def test_oversized_frames_are_refused_from_the_header(server, env):
    sock = _raw(server)
    sock.sendall(protocol.HEADER.pack(protocol.MAX_HELLO_FRAME + 1))
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and f"over the {protocol.MAX_HELLO_FRAME}-byte limit" in reply.message
    sock = _raw(server)
    assert isinstance(_hello(sock), protocol.Ok)
    sock.sendall(protocol.HEADER.pack(protocol.MAX_FRAME + 1))
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and f"over the {protocol.MAX_FRAME}-byte limit" in reply.message
    _serves(server, env)


def test_slow_client_that_never_finishes_a_frame_is_cut_off(server, env):
    sock = _raw(server)
    assert isinstance(_hello(sock), protocol.Ok)
    start = time.monotonic()
    sock.sendall(protocol.HEADER.pack(100) + b"x")
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and "too slow: timed out reading a 100-byte frame" in reply.message
    assert time.monotonic() - start < 3
    _serves(server, env)  # the device was released with the session


def test_idle_client_is_dropped(server, env):
    sock = _raw(server)
    assert isinstance(_hello(sock), protocol.Ok)
    reply = _reply(sock)
    assert isinstance(reply, protocol.Err) and "timed out waiting for a request" in reply.message
    _serves(server, env)


def test_buffers_of_another_client_are_out_of_reach(server, env):
    first = RemoteBackend(env, url=f"tcp://127.0.0.1:{server.address[1]}", token=TOKEN)
    buf = first.alloc(4096)
    first.copy_in(buf, 0, b"secret" * 10)
    handle = buf.handle
    first.close()
    sock = _raw(server)
    assert isinstance(_hello(sock), protocol.Ok)
    for request in (protocol.Read((), handle, 0, 60), protocol.Free(handle), protocol.Write(((handle, 0, b"x"),))):
        sock.sendall(protocol.encode(request))
        reply = _reply(sock)
        assert isinstance(reply, protocol.Err) and reply.error == "backend"
        assert reply.message == f"buffer handle {handle} is not a live buffer of this session"


NEGATIVE = sorted(json.loads((VECTORS / "index.json").read_text())["negative"], key=lambda e: e["path"])[::4]


@pytest.mark.parametrize("path", [e["path"] for e in NEGATIVE])
def test_the_server_verifies_what_the_host_did_not(server, env, path):
    """A client that skips its own verifier (Backend.run directly) still gets the program refused by the server."""
    vector = load_vector(VECTORS / path)
    backend = RemoteBackend(env, url=f"tcp://127.0.0.1:{server.address[1]}", token=TOKEN)
    try:
        buf = backend.alloc_at(vector.phys_base, len(vector.mem_in))
        backend.copy_in(buf, 0, vector.mem_in)
        with pytest.raises(ProgramError) as err:
            backend.run(vector.phys_base + vector.meta["insn_offset"], vector.insn_count, 5.0)
        assert type(err.value) is PROGRAM_ERRORS[vector.expect["class"]]
        backend.invalidate(buf)
        assert np.array_equal(backend.view(buf), vector.mem_in)  # nothing ran
    finally:
        backend.close()


def test_disconnect_mid_run_releases_the_device(server, env):
    backend = RemoteBackend(env, url=f"tcp://127.0.0.1:{server.address[1]}", token=TOKEN)
    rt = Runtime(backend, env=env)
    programs.matmul_tile(rt, np.random.default_rng(2))  # leaves a verified stream in the instruction buffer
    sock = backend.conn.chan.sock
    sock.sendall(protocol.encode(protocol.Run((), rt._insn_buf.phys_addr, rt.stats.instructions, 5.0)))
    sock.close()  # gone before the reply
    _serves(server, env)


def _start_subprocess_server(tmp_path: Path, max_files: int | None = None) -> tuple[subprocess.Popen, int]:
    (tmp_path / "token").write_text(TOKEN)

    def limit() -> None:
        if max_files is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "rpc", "serve", "--sim", "--insecure-loopback",
                             "--port", "0", "--token-file", str(tmp_path / "token"), "--lock", str(tmp_path / "lock"),
                             "--frame-s", "2", "--idle-s", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=limit)
    line = proc.stdout.readline()
    match = re.search(r"serving sim on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    return proc, int(match.group(1))


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def test_many_concurrent_clients_are_served_or_told_busy(env, tmp_path):
    proc, port = _start_subprocess_server(tmp_path)
    try:
        def wave(n: int) -> list[str]:
            outcomes: list[str] = []

            def client() -> None:
                try:
                    with Runtime("rpc", env=env, url=f"tcp://127.0.0.1:{port}", token=TOKEN,
                                 insn_capacity=64, uop_capacity=64) as rt:
                        got, want = programs.matmul_tile(rt, np.random.default_rng(1))
                        outcomes.append("served" if np.array_equal(got, want) else "WRONG")
                except DeviceBusy:
                    outcomes.append("busy")
                except RemoteError as e:
                    outcomes.append(f"error: {e}")

            threads = [threading.Thread(target=client) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            return outcomes

        first = wave(100)
        after_first = _rss_kib(proc.pid)
        second = wave(100)
        after_second = _rss_kib(proc.pid)
        for outcomes in (first, second):
            assert len(outcomes) == 100 and set(outcomes) <= {"served", "busy"}, sorted(set(outcomes))
            assert "served" in outcomes
        print(f"server RSS after wave 1: {after_first} KiB, after wave 2: {after_second} KiB")
        assert after_second - after_first < 8 * 1024, (after_first, after_second)  # KiB: flat across waves
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_session_cannot_take_all_memory(tmp_path, env):
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env,
                                 max_session_bytes=1 << 20)).start()
    try:
        backend = RemoteBackend(env, url=f"tcp://127.0.0.1:{srv.address[1]}", token=TOKEN)
        backend.alloc(1 << 19)
        with pytest.raises(BackendError, match=r"^alloc of 1048576 bytes refused: this session already holds 524288 "
                                               r"bytes and the server allows 1048576 per session$"):
            backend.alloc(1 << 20)
        backend.close()
    finally:
        srv.stop()


def test_server_out_of_file_descriptors_keeps_serving(env, tmp_path):
    proc, port = _start_subprocess_server(tmp_path, max_files=48)
    try:
        socks = []
        for _ in range(60):  # more connections than the server can hold open: accept fails for some
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)
        assert proc.poll() is None
        for sock in socks:
            sock.close()
        end = time.monotonic() + 20
        while True:
            try:
                with Runtime("rpc", env=env, url=f"tcp://127.0.0.1:{port}", token=TOKEN, timeout_s=5.0) as rt:
                    got, want = programs.matmul_tile(rt, np.random.default_rng(0))
                    assert np.array_equal(got, want)
                    break
            except (DeviceBusy, RemoteError):
                assert time.monotonic() < end
                time.sleep(0.2)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_device_that_cannot_be_opened_is_reported_to_the_client(env, tmp_path):
    srv = TcpServer(ServerConfig(mode="emulate", token=TOKEN, env=env, emulator=str(tmp_path / "no-board"))).start()
    try:
        with pytest.raises(DeviceError, match=r"no-board"):
            RemoteBackend(env, url=f"tcp://127.0.0.1:{srv.address[1]}", token=TOKEN)
    finally:
        srv.stop()
