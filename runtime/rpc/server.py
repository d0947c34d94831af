"""``vta rpc serve``: one device served to remote runtimes, data in and data out, nothing executable.

A session is one connection. It authenticates (a pre-shared token in service mode; SSH did it in
``--stdio`` mode), then opens the device, which takes the device lock shared with notebooks: a
second client is told ``busy: owned by ...`` and disconnected. Buffer handles are random and
per session, so a client can touch only what it allocated. Before every launch the server runs
its own verifier over the session's buffers, whatever the host checked. Each session runs in its
own thread with deadlines on every read; any failure ends that session only, and closing the
device on the way out releases the lock for the next client.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vta.config import Environment, get_env
from vta.driver.lock import DeviceLock
from vta.errors import (
    BackendError,
    DeviceBusy,
    DeviceError,
    DeviceTimeout,
    DeviceUnrecoverable,
    ProgramError,
    RemoteError,
    VTAError,
)
from vta.runtime.backend import Backend
from vta.runtime.rpc import protocol
from vta.runtime.rpc.channel import Channel, SocketChannel
from vta.runtime.verify import Verifier

__all__ = ["ServerConfig", "Session", "TcpServer", "error_kind", "open_device"]

log = logging.getLogger(__name__)
SIM_LOCK_PATH = "/tmp/vta-sim-rpc.lock"  # the served simulator's lock (the board's is the driver's)
KEEP_RUNS = 64  # runs whose timing a client may still ask for


@dataclass
class ServerConfig:
    """What is served and the limits on clients (seconds)."""

    mode: str = "pynq"  # "pynq", "emulate" or "sim"
    token: str | None = None  # required from every client when set (service mode)
    lock_path: str | None = None  # device lock; default: the board's, or the emulator's own
    env: Environment = field(default_factory=get_env)
    idle_s: float = 300.0  # a client silent this long between requests is dropped
    frame_s: float = 10.0  # a started frame must be complete within this
    hello_s: float = 5.0  # TLS handshake and hello must arrive within this
    max_run_s: float = 60.0  # a run's timeout is capped at this
    max_connections: int = 128  # beyond this, connections are closed at once
    max_session_bytes: int = 256 << 20  # buffer bytes one session may hold (the Pynq's CMA pool is 128 MiB)
    emulator: Any = None  # the EmulatedBoard served in "emulate" mode


def open_device(config: ServerConfig, client: str) -> tuple[Backend, DeviceLock | None]:
    """Open the served device for one session, under the device lock (DeviceBusy when owned).

    Returns the backend and the lock to release after closing it (None: the board device holds its own).
    """
    if config.mode == "sim":
        from vta.runtime.backends.sim import SimBackend

        lock = DeviceLock(config.lock_path or SIM_LOCK_PATH)
        lock.acquire("the simulator served by vta rpc")
        lock.describe(f"vta rpc serve --sim for {client}")
        return SimBackend(config.env), lock
    from vta.runtime.backends.board import BoardBackend

    if config.mode == "emulate":
        backend = BoardBackend(config.env, emulator=config.emulator, timeout_s=config.max_run_s)
    else:
        backend = BoardBackend(config.env, lock_path=config.lock_path, timeout_s=config.max_run_s, program=False)
    backend.device.lock.describe(f"vta rpc serve for {client}")
    return backend, None


def error_kind(e: BaseException) -> str:
    """The wire name of an error: the program-error class, or busy/timeout/device/backend/protocol."""
    if isinstance(e, ProgramError):
        return e.error_class
    for cls, kind in ((DeviceBusy, "busy"), (DeviceTimeout, "timeout"), (DeviceError, "device"),
                      (BackendError, "backend"), (RemoteError, "protocol")):
        if isinstance(e, cls):
            return kind
    return "error"


class Session:
    """One authenticated client on the device: its buffers, its verifier, its recent runs."""

    def __init__(self, config: ServerConfig, backend: Backend, lock: DeviceLock | None, client: str):
        self.config, self.backend, self.lock, self.client = config, backend, lock, client
        self.env = config.env
        self.verifier = Verifier(self.env)
        self.buffers: dict[int, tuple[Any, int, int]] = {}  # handle -> (backend buffer, phys, nbytes)
        self.runs: OrderedDict[int, Any] = OrderedDict()
        self._ranges: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.next_run = 0

    def handle(self, req: protocol.Message) -> dict:
        """Serve one request; VTAError for anything refused."""
        method: Callable[[Any], dict] = getattr(self, f"_{req.KIND}")
        return method(req)

    def _buffer(self, handle: int) -> tuple[Any, int, int]:
        entry = self.buffers.get(handle)
        if entry is None:
            raise BackendError(f"buffer handle {handle} is not a live buffer of this session")
        return entry

    def _apply(self, writes: tuple[tuple[int, int, bytes], ...]) -> None:
        for handle, offset, data in writes:
            self.backend.copy_in(self._buffer(handle)[0], offset, data)

    def _alloc(self, req: protocol.Alloc) -> dict:
        held = sum(nbytes for _, _, nbytes in self.buffers.values())
        if held + req.nbytes > self.config.max_session_bytes:
            raise BackendError(f"alloc of {req.nbytes} bytes refused: this session already holds {held} bytes "
                               f"and the server allows {self.config.max_session_bytes} per session")
        buf = self.backend.alloc(req.nbytes) if req.phys < 0 else self.backend.alloc_at(req.phys, req.nbytes)
        phys = self.backend.phys(buf)
        handle = secrets.randbits(63)
        self.buffers[handle] = (buf, phys, req.nbytes)
        self.verifier.track(phys, self.backend.view(buf)[:req.nbytes])
        return {"handle": handle, "phys": phys}

    def _free(self, req: protocol.Free) -> dict:
        buf, phys, _ = self._buffer(req.handle)
        del self.buffers[req.handle]
        self.verifier.untrack(phys)
        self.backend.free(buf)
        return {}

    def _write(self, req: protocol.Write) -> dict:
        self._apply(req.writes)
        return {}

    def _read(self, req: protocol.Read) -> dict:
        self._apply(req.writes)
        buf = self._buffer(req.handle)[0]
        self.backend.invalidate(buf)
        return {"data": self.backend.copy_out(buf, req.offset, req.nbytes).tobytes()}

    def _run(self, req: protocol.Run) -> dict:
        self._apply(req.writes)  # copy_in makes the bytes it writes visible to the device
        # Whatever the host checked: only a stream over this session's buffers runs. SRAM carries
        # over only from this session's own earlier runs (the first run may read nothing unwritten).
        self.verifier.verify(req.insn_phys, req.insn_count, continued=self.next_run > 0)
        status = self.backend.run(req.insn_phys, req.insn_count, min(req.timeout_s, self.config.max_run_s))
        run_id, self.next_run = self.next_run, self.next_run + 1
        self.runs[run_id] = status
        while len(self.runs) > KEEP_RUNS:
            self.runs.popitem(last=False)
        return {"run_id": run_id,
                "counters": dict(status.counters) if status.counters is not None else None,
                "stored": self._stored(req.insn_phys, req.insn_count),
                "device_s": float(status.elapsed_s)}  # the device run alone: no transfer, no verification

    def _stored(self, insn_phys: int, insn_count: int) -> list:
        """Device-written bytes of the run, one span per buffer, so the host's copies stay current."""
        lo, hi = self._store_ranges(self._bytes_at(insn_phys, insn_count * 16))
        out = []
        for handle, (buf, phys, nbytes) in self.buffers.items():
            inside = (lo >= phys) & (lo < phys + nbytes)
            if inside.any():
                start, end = int(lo[inside].min()) - phys, min(int(hi[inside].max()) - phys, nbytes)
                self.backend.invalidate(buf)
                out.append([handle, start, self.backend.copy_out(buf, start, end - start).tobytes()])
        return out

    def _store_ranges(self, stream: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Start and end physical byte addresses the STOREs of ``stream`` write (cached per stream)."""
        ranges = self._ranges.get(stream)
        if ranges is None:
            from vta.isa import OP_STORE, DecodedStream, get_isa

            s = DecodedStream(stream, self.env)
            m, sizes = s.mem, get_isa(self.env).elem_bytes
            stores = (s.opcode == OP_STORE) & (m["x_size"] > 0) & (m["y_size"] > 0)
            eb = np.array([sizes.get(int(t), 0) for t in m["memory_type"][stores]], np.int64)
            lo = m["dram_base"][stores].astype(np.int64) * eb
            hi = lo + ((m["y_size"][stores] - 1) * m["x_stride"][stores] + m["x_size"][stores]) * eb
            ranges = self._ranges[stream] = (lo, hi)
            while len(self._ranges) > KEEP_RUNS:
                self._ranges.popitem(last=False)
        return ranges

    def _bytes_at(self, phys: int, nbytes: int) -> bytes:
        for buf, base, size in self.buffers.values():
            if base <= phys and phys + nbytes <= base + size:
                return self.backend.copy_out(buf, phys - base, nbytes).tobytes()
        raise BackendError(f"instructions at 0x{phys:x} are not inside a buffer of this session")

    def _timing(self, req: protocol.Timing) -> dict:
        status = self.runs.get(req.run_id)
        if status is None:
            raise BackendError(f"timing: run {req.run_id} is not among this session's last {KEEP_RUNS} runs")
        self.backend.require("timing", "timing model")
        return timing_to_wire(status.predict())

    def _bitstream(self, req: protocol.Bitstream) -> dict:
        self.backend.require("bitstream", "bitstream selection")
        from vta.bitstream.manifest import RELEASES
        from vta.bitstream.program import program
        from vta.bitstream.store import release_path

        record = next((r for r in RELEASES if r.name == req.name and r.target == self.env.TARGET), None)
        if record is None:
            names = sorted({r.name for r in RELEASES if r.target == self.env.TARGET})
            raise BackendError(f"no released bitstream named {req.name!r} for TARGET={self.env.TARGET}; "
                               f"released: {', '.join(names) or 'none'}")
        device = self.backend.device  # type: ignore[attr-defined]
        path = program(release_path(record), self.env, expected=record, lock=device.lock)
        self.backend.reset()
        return {"programmed": str(path.name)}

    def _reset(self, req: protocol.Reset) -> dict:
        self.backend.reset()
        self.next_run = 0
        return {}

    def _info(self, req: protocol.Info) -> dict:
        return info(self.config, self.backend)

    def close(self) -> None:
        """Free the session's buffers and release the device (and its lock) for the next client."""
        try:
            self.backend.close()
        finally:
            if self.lock is not None:
                self.lock.release()


def info(config: ServerConfig, backend: Backend) -> dict:
    """What a client learns at hello: the device, its capabilities and the configuration it runs."""
    return {"backend": backend.name, "mode": config.mode, "capabilities": sorted(backend.capabilities),
            "config": {k: v for k, v in config.env.derived().items() if isinstance(v, (int, str, float))},
            "protocol": protocol.VERSION, "max_frame": protocol.MAX_FRAME,
            "counters": backend.counters() if "counters" in backend.capabilities else None}


def timing_to_wire(t: Any) -> dict:
    """A :class:`~vta.sim.perf.Timing` as plain values (arrays as dtype, shape, bytes)."""
    arrays = {name: [str(a.dtype), list(a.shape), a.tobytes()]
              for name in ("fetch_start", "fetch_end", "issue", "start", "end") for a in [getattr(t, name)]}
    return {"cycles": int(t.cycles), "clock_mhz": float(t.clock_mhz),
            "modules": {k: m.as_dict() for k, m in t.modules.items()}, "gemm_uops": int(t.gemm_uops),
            "macs": int(t.macs), "alu_uops": int(t.alu_uops),
            "dram_bytes": {k: int(v) for k, v in t.dram_bytes.items()},
            "bus_bytes": int(t.bus_bytes), "words": np.ascontiguousarray(t.stream.words).tobytes(), "arrays": arrays}


def serve_channel(chan: Channel, config: ServerConfig, peer: str, authenticated: bool = False,
                  on_unrecoverable: Callable[[str], None] | None = None) -> None:
    """Run one session over ``chan`` until bye, error or timeout; never raises.

    When the device fails and cannot be re-programmed (a service runs without the rights to program
    the FPGA), the client is told, the session ends and ``on_unrecoverable`` gets the reason: the
    server should then exit with an error, so that its supervisor restarts it and programs the FPGA.
    """
    session: Session | None = None
    try:
        first = chan.recv_frame(protocol.MAX_HELLO_FRAME, config.hello_s, config.hello_s)
        hello = protocol.decode(first, protocol.REQUESTS)
        if not isinstance(hello, protocol.Hello):
            raise RemoteError(f"rpc: the first request must be hello, got {hello.KIND}")
        if not authenticated and (config.token is None or
                                  not hmac.compare_digest(hello.token.encode(), config.token.encode())):
            log.warning("rpc: %s failed authentication", peer)
            _reply(chan, protocol.Err("auth", "authentication failed: wrong or missing token"))
            return
        client = f"{hello.client or 'client'} at {peer}"
        try:
            backend, lock = open_device(config, client)
        except VTAError as e:  # busy, or the device cannot be opened: the client is told which
            log.warning("rpc: cannot open the device for %s: %s", client, e)
            _reply(chan, protocol.Err(error_kind(e), str(e)[:4000]))
            return
        session = Session(config, backend, lock, client)
        log.info("rpc: session opened for %s", client)
        _reply(chan, protocol.Ok(info(config, backend)))
        while True:
            req = protocol.decode(chan.recv_frame(protocol.MAX_FRAME, config.idle_s, config.frame_s), protocol.REQUESTS)
            if isinstance(req, protocol.Bye):  # release the device before answering: the client may reconnect at once
                session, closing = None, session
                closing.close()
                _reply(chan, protocol.Ok({}))
                return
            if isinstance(req, protocol.Hello):
                raise RemoteError("rpc: hello sent twice")
            try:
                reply: protocol.Message = protocol.Ok(session.handle(req))
            except DeviceUnrecoverable as e:
                log.error("rpc: the device cannot be recovered, ending the session of %s: %s", client, e)
                _reply(chan, protocol.Err("device", f"{e} (the server stops serving until it is restarted)"[:4000]))
                if on_unrecoverable is not None:
                    on_unrecoverable(str(e))
                return
            except VTAError as e:
                reply = protocol.Err(error_kind(e), str(e)[:4000])
            _reply(chan, reply)
    except RemoteError as e:
        log.info("rpc: dropping %s: %s", peer, e)
        with contextlib.suppress(RemoteError):
            _reply(chan, protocol.Err("protocol", str(e)[:4000]))
    except Exception:
        log.exception("rpc: session for %s failed", peer)
    finally:
        if session is not None:
            try:
                session.close()
            except Exception:
                log.exception("rpc: closing the device after %s failed", peer)
            log.info("rpc: session closed for %s", peer)
        chan.close()


def _reply(chan: Channel, msg: protocol.Message) -> None:
    chan.send(protocol.encode(msg), 10.0)


class TcpServer:
    """Accept connections on ``host:port`` (TLS when ``tls`` is given), a thread per session."""

    def __init__(self, config: ServerConfig, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None):
        self.config, self.tls = config, tls
        self.sock = socket.create_server((host, port))
        self.address = self.sock.getsockname()[:2]
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unrecoverable: str | None = None  # why serving stopped on a device that cannot be recovered

    def _give_up(self, reason: str) -> None:
        self.unrecoverable = reason
        self._stop.set()

    def serve_forever(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError as e:  # e.g. out of file descriptors: wait for sessions to end, keep serving
                if self._stop.is_set():
                    return
                log.warning("rpc: accept failed: %s", e)
                self._stop.wait(0.5)
                continue
            if not self._slots.acquire(blocking=False):
                log.warning("rpc: connection limit %d reached, closing %s", self.config.max_connections, addr)
                conn.close()
                continue
            threading.Thread(target=self._session, args=(conn, f"{addr[0]}:{addr[1]}"), daemon=True).start()

    def _session(self, conn: socket.socket, peer: str) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(self.config.hello_s)
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    log.info("rpc: TLS handshake with %s failed: %s", peer, e)
                    conn.close()
                    return
            serve_channel(SocketChannel(conn), self.config, peer, on_unrecoverable=self._give_up)
        finally:
            self._slots.release()

    def start(self) -> TcpServer:
        """Serve in a background thread (tests, embedding); ``stop`` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()
