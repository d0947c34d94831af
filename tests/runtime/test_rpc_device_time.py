"""The run reply carries the device time the server measured: it excludes the network, it is checked
like every other reply field, and a client and a server of different protocol versions refuse each other."""

from __future__ import annotations

import socket
import threading
import time

import msgpack
import numpy as np
import pytest

from tests.runtime import programs
from tests.runtime.slow_network import NETWORK_S, SlowNetwork
from vta.errors import RemoteError
from vta.runtime import Runtime
from vta.runtime.backends.remote import RemoteBackend
from vta.runtime.backends.sim import SimBackend
from vta.runtime.rpc import protocol
from vta.runtime.rpc.client import Connection
from vta.runtime.rpc.server import ServerConfig, TcpServer

TOKEN = "a-test-token-of-enough-length"
DEVICE_S = 0.05  # the served device's run takes at least this


@pytest.fixture
def server(tmp_path, env):
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env)).start()
    yield f"tcp://127.0.0.1:{srv.address[1]}"
    srv.stop()




class _Rewriting(Connection):
    """Changes the run replies it receives, as a server of another release might send them."""

    rewrite = staticmethod(lambda reply: reply)

    def call(self, msg, timeout_s):
        reply = super().call(msg, timeout_s)
        return self.rewrite(reply) if msg.KIND == "run" else reply


def test_run_reply_carries_the_servers_device_time(server, env, rng, monkeypatch):
    device_run = SimBackend._run

    def slow_device(self, *args):
        time.sleep(DEVICE_S)
        return device_run(self, *args)

    monkeypatch.setattr(SimBackend, "_run", slow_device)  # the served device (same process, server thread)
    with Runtime("rpc", env=env, url=server, token=TOKEN) as rt:
        backend = rt.backend
        assert backend.last_device_s is None and backend.device_s == 0.0
        backend.conn.__class__ = SlowNetwork
        got, want = programs.matmul_tile(rt, rng)
        assert np.array_equal(got, want) and rt.stats.runs == 1
        first = backend.last_device_s
        assert DEVICE_S <= first < DEVICE_S + NETWORK_S  # the device run, not the round trip
        assert rt.stats.run_s >= DEVICE_S + NETWORK_S  # RunStatus.elapsed_s stays the host's time in run()
        programs.matmul_tile(rt, rng)
        assert backend.device_s == pytest.approx(first + backend.last_device_s)


@pytest.mark.parametrize(("rewrite", "message"), [
    (lambda r: {k: v for k, v in r.items() if k != "device_s"},
     r"sent a run reply with fields \['counters', 'run_id', 'stored'\], expected \['counters', 'device_s', "),
    (lambda r: {**r, "extra": 1}, r"sent a run reply with fields \['counters', 'device_s', 'extra', "),
    (lambda r: {**r, "device_s": "0.1"},
     r"sent a run reply whose device_s is not a number of seconds in 0\.\.3600: '0\.1'"),
    (lambda r: {**r, "device_s": True}, r"sent a run reply whose device_s is not a number of seconds"),
    (lambda r: {**r, "device_s": -1.0}, r"sent a run reply whose device_s is not a number of seconds"),
    (lambda r: {**r, "device_s": float("nan")}, r"sent a run reply whose device_s is not a number of seconds"),
])
def test_a_malformed_device_time_is_refused(server, env, rng, rewrite, message):
    with Runtime("rpc", env=env, url=server, token=TOKEN) as rt:
        rt.backend.conn.__class__ = _Rewriting
        rt.backend.conn.rewrite = rewrite
        with pytest.raises(RemoteError, match=r"^rpc server at tcp://127\.0\.0\.1:\d+ " + message):
            programs.matmul_tile(rt, rng)


def _old_server(replies: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A listener that answers one hello with a reply of the previous protocol version."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            replies.append(conn.recv(4096))
            body = msgpack.packb([protocol.VERSION - 1, "ok", {"backend": "sim"}], use_bin_type=True)
            conn.sendall(protocol.frame(body))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_client_and_server_of_different_versions_refuse_each_other(env):
    received: list[bytes] = []
    listener, thread = _old_server(received)
    try:
        with pytest.raises(RemoteError, match=rf"^rpc frame: protocol version {protocol.VERSION - 1} is not "
                                              rf"supported \(this side speaks {protocol.VERSION}\); run the same "):
            RemoteBackend(env, url=f"tcp://127.0.0.1:{listener.getsockname()[1]}", token=TOKEN, timeout_s=5)
        thread.join(5)
    finally:
        listener.close()
    assert msgpack.unpackb(received[0][4:])[0] == protocol.VERSION  # the hello said which version it speaks
