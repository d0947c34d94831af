"""The ``rpc`` backend: the runtime on a device served by ``vta rpc serve`` on another machine.

Each buffer has a host copy (its ``view``); copies into it are queued and travel with the next
run, so a synchronize in the steady state is one round trip: queued copies, the stream, the run,
and back the bytes the run's STOREs wrote, which update the host copies (``copy_out`` and
``view`` are then local). ``invalidate`` re-reads a buffer from the device. The runtime verifies
every stream here before sending it and the server verifies it again before running it. Timing
and counters are the served device's: counters come with each run, a prediction when asked for.

Times: ``RunStatus.elapsed_s`` keeps the meaning it has for every backend, the host's time inside
``Backend.run`` (for this one: transfers, the server's verification, the device run and the
network round trip). What the device itself took, measured by the server around its own run,
comes with each run reply and is kept apart: :attr:`RemoteBackend.last_device_s` for the last
run and :attr:`RemoteBackend.device_s` summed over the session (the tuner's ``rpc`` measurer
uses it, so the network is never counted as device time).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from vta.config import Environment, get_env, remote_board
from vta.errors import BackendError, RemoteError
from vta.runtime.backend import Backend
from vta.runtime.rpc import protocol
from vta.runtime.rpc.client import Connection, read_token
from vta.sim.perf import ModuleTime, Timing

__all__ = ["RemoteBackend"]

_REPLY_MARGIN_S = 30.0  # beyond a run's own timeout, for transfer and verification
_WRITE_BUDGET = protocol.MAX_FRAME - (1 << 20)
_ARRAY_DTYPES = frozenset({"int64", "int32", "float64"})


class RemoteBuffer:
    """A served buffer: the server's handle, its address, and the host copy."""

    __slots__ = ("dirty", "handle", "host", "phys")

    def __init__(self, handle: int, phys: int, nbytes: int):
        self.handle, self.phys = handle, phys
        self.host = np.zeros(nbytes, np.uint8)
        self.dirty: tuple[int, int] | None = None  # byte span the server has not seen yet

    def touch(self, lo: int, hi: int) -> None:
        self.dirty = (lo, hi) if self.dirty is None else (min(lo, self.dirty[0]), max(hi, self.dirty[1]))


class RemoteBackend(Backend):
    """A device behind ``vta rpc serve``, reached by URL (``tcp+tls://``, ``ssh://``, loopback ``tcp://``).

    Example
    -------
    >>> rt = Runtime("rpc", url="ssh://xilinx@pynq")       # doctest: +SKIP
    >>> rt = Runtime("rpc")   # the board VTA_RPC_URL names     # doctest: +SKIP
    """

    name = "rpc"

    def __init__(self, env: Environment | None = None, *, url: str | None = None, host: str | None = None,
                 port: int | None = None, token: str | None = None, token_file: str | os.PathLike[str] | None = None,
                 cafile: str | None = None,
                 command: Sequence[str] | None = None, timeout_s: float = 30.0, client: str = "vta runtime"):
        super().__init__()
        self.env = env or get_env()
        if url is None and host is None and port is None:
            named = remote_board()
            if named is None:
                raise BackendError("rpc backend: give url='tcp+tls://HOST:PORT' or 'ssh://USER@HOST', or host= and "
                                   "port=, or set VTA_RPC_URL")
            url, token_file, cafile = named.url, token_file or named.token_file, cafile or named.cafile
            command = command or ([named.command] if named.command else None)
        if url is None:
            if host is None or port is None:
                raise BackendError("rpc backend: give url='tcp+tls://HOST:PORT' or 'ssh://USER@HOST', "
                                   "or host= and port=")
            url = f"tcp+tls://{host}:{port}"
        self.url, self.timeout_s = url, timeout_s
        secret = read_token(token, token_file)
        self.conn = Connection.open(url, cafile=cafile, command=command, timeout_s=timeout_s)
        try:
            self.info = self.conn.call(protocol.Hello(secret, client), timeout_s)
            self._check_config(self.info.get("config"))
        except BaseException:
            self.conn.close()
            raise
        self.capabilities = frozenset(str(c) for c in self.info.get("capabilities", ()))
        self._by_handle: dict[int, RemoteBuffer] = {}
        self._counters_last = self._counter_values(self.info.get("counters"))
        self._run_id: int | None = None
        self.last_device_s: float | None = None  # the last run's device time, as the server measured it
        self.device_s = 0.0  # the session's device time over all its runs, as the server measured it

    def _check_config(self, served: Any) -> None:
        """Programs are built for the host's configuration: the served device must have the same one."""
        if not isinstance(served, dict):
            raise RemoteError(f"rpc server at {self.url} did not describe its configuration")
        mine = {k: v for k, v in self.env.derived().items() if isinstance(v, (int, str, float))}
        differ = [f"{k}: here {mine[k]!r}, served {served.get(k)!r}" for k in mine
                  if k != "TARGET" and served.get(k) != mine[k]]
        if differ:
            raise BackendError(f"rpc server at {self.url} runs another hardware configuration "
                               f"({'; '.join(differ[:4])})")

    # --- buffers ------------------------------------------------------------------------------
    def _new(self, reply: dict, nbytes: int) -> RemoteBuffer:
        handle, phys = reply.get("handle"), reply.get("phys")
        if not (isinstance(handle, int) and isinstance(phys, int)):
            raise RemoteError(f"rpc server at {self.url} sent a malformed alloc reply")
        buf = RemoteBuffer(handle, phys, nbytes)
        self._by_handle[handle] = buf
        return buf

    def _alloc(self, nbytes: int) -> RemoteBuffer:
        return self._new(self.conn.call(protocol.Alloc(nbytes, -1), self.timeout_s), nbytes)

    def _alloc_at(self, phys_addr: int, nbytes: int) -> RemoteBuffer:
        return self._new(self.conn.call(protocol.Alloc(nbytes, phys_addr), self.timeout_s), nbytes)

    def _free(self, buf: RemoteBuffer) -> None:
        del self._by_handle[buf.handle]
        try:
            self.conn.call(protocol.Free(buf.handle), self.timeout_s)
        except RemoteError:
            if not self.conn.closed:
                raise
            # the session is gone, and the server freed its buffers with it

    def _phys(self, buf: RemoteBuffer) -> int:
        return buf.phys

    def _view(self, buf: RemoteBuffer) -> np.ndarray:
        return buf.host

    def _copy_in(self, buf: RemoteBuffer, offset: int, data: np.ndarray) -> None:
        buf.host[offset:offset + len(data)] = data
        buf.touch(offset, offset + len(data))

    def _copy_out(self, buf: RemoteBuffer, offset: int, nbytes: int) -> np.ndarray:
        return buf.host[offset:offset + nbytes].copy()

    def _flush(self, buf: RemoteBuffer) -> None:
        buf.touch(0, len(buf.host))  # writes through the view: the whole host copy goes with the next request

    def _invalidate(self, buf: RemoteBuffer) -> None:
        reply = self.conn.call(protocol.Read(self._writes(), buf.handle, 0, len(buf.host)), self.timeout_s)
        data = reply.get("data")
        if not isinstance(data, bytes) or len(data) != len(buf.host):
            raise RemoteError(f"rpc server at {self.url} sent a malformed read reply")
        buf.host[:] = np.frombuffer(data, np.uint8)

    def _writes(self) -> tuple[tuple[int, int, bytes], ...]:
        """The queued copies; those beyond one frame's budget are sent ahead in write requests."""
        batch: list[tuple[int, int, bytes]] = []
        size = 0
        for buf in self._by_handle.values():
            if buf.dirty is None:
                continue
            lo, hi = buf.dirty
            if batch and size + (hi - lo) > _WRITE_BUDGET:
                self.conn.call(protocol.Write(tuple(batch)), self.timeout_s)
                batch, size = [], 0
            batch.append((buf.handle, lo, buf.host[lo:hi].tobytes()))
            size += hi - lo
            buf.dirty = None
        return tuple(batch)

    # --- running ------------------------------------------------------------------------------
    def _run(self, insn_phys: int, insn_count: int, timeout_s: float) -> Mapping[str, int] | None:
        request = protocol.Run(self._writes(), insn_phys, insn_count, timeout_s)
        reply = self.conn.call(request, timeout_s + _REPLY_MARGIN_S)
        if set(reply) != set(protocol.RUN_REPLY):
            raise RemoteError(f"rpc server at {self.url} sent a run reply with fields {sorted(map(str, reply))[:8]}, "
                              f"expected {sorted(protocol.RUN_REPLY)}")
        stored, run_id, counters, device_s = (reply[k] for k in ("stored", "run_id", "counters", "device_s"))
        if not isinstance(stored, list) or not isinstance(run_id, int) or isinstance(run_id, bool):
            raise RemoteError(f"rpc server at {self.url} sent a malformed run reply")
        if isinstance(device_s, bool) or not isinstance(device_s, (int, float)) or not math.isfinite(device_s) \
                or not 0 <= device_s <= protocol.MAX_RUN_S:
            raise RemoteError(f"rpc server at {self.url} sent a run reply whose device_s is not a number of seconds "
                              f"in 0..{protocol.MAX_RUN_S:g}: {str(device_s)[:40]!r}")
        for entry in stored:
            buf = self._by_handle.get(entry[0]) if isinstance(entry, list) and len(entry) == 3 else None
            if buf is None or not isinstance(entry[1], int) or not isinstance(entry[2], bytes) \
                    or not 0 <= entry[1] <= entry[1] + len(entry[2]) <= len(buf.host):
                raise RemoteError(f"rpc server at {self.url} sent stored bytes outside this session's buffers")
            buf.host[entry[1]:entry[1] + len(entry[2])] = np.frombuffer(entry[2], np.uint8)
        self._run_id = run_id
        self.last_device_s = float(device_s)
        self.device_s += self.last_device_s
        self._counters_last = self._counter_values(counters)
        return self._counters_last

    def _counter_values(self, counters: Any) -> dict[str, int] | None:
        if counters is None:
            return None
        if not isinstance(counters, dict) or not all(isinstance(v, int) for v in counters.values()):
            raise RemoteError(f"rpc server at {self.url} sent malformed counters")
        return {str(k): v for k, v in counters.items()}

    def _predictor(self) -> Callable[[], Timing] | None:
        if "timing" not in self.capabilities or self._run_id is None:
            return None
        return functools.cache(functools.partial(self._fetch_timing, self._run_id))

    def _fetch_timing(self, run_id: int) -> Timing:
        return timing_from_wire(self.conn.call(protocol.Timing(run_id), self.timeout_s), self.env)

    def _counters(self) -> Mapping[str, int]:
        if self._counters_last is None:
            raise RemoteError(f"rpc server at {self.url} declares counters but sent none")
        return self._counters_last

    def select_bitstream(self, name: str) -> str:
        """Have the board program the released bitstream called ``name`` (its manifest name; never a file).

        The device is re-programmed, so queued state is dropped as after a reset. Returns the file
        programmed. BackendError when the served device has no bitstreams or no release has that name.
        """
        self.require("bitstream", "bitstream selection")
        reply = self.conn.call(protocol.Bitstream(name), self.timeout_s)
        for hook in list(self._reset_hooks):
            hook()
        return str(reply.get("programmed", ""))

    def _reset(self) -> None:
        self.conn.call(protocol.Reset(), self.timeout_s)

    def _close(self) -> None:
        try:
            self.conn.call(protocol.Bye(), 5.0)
        except RemoteError:
            if not self.conn.closed:
                raise
        finally:
            self.conn.close()


def timing_from_wire(value: dict, env: Environment) -> Timing:
    """The :class:`~vta.sim.perf.Timing` a server sent (``vta.runtime.rpc.server.timing_to_wire``)."""
    from vta.isa import DecodedStream

    try:
        arrays = {}
        for name, (dtype, shape, data) in value["arrays"].items():
            if dtype not in _ARRAY_DTYPES:
                raise RemoteError(f"rpc timing: array dtype {dtype!r} is not expected")
            arrays[name] = np.frombuffer(data, np.dtype(dtype)).reshape(shape)
        return Timing(int(value["cycles"]), float(value["clock_mhz"]),
                      {k: ModuleTime(**{f: int(n) for f, n in m.items()}) for k, m in value["modules"].items()},
                      int(value["gemm_uops"]), int(value["macs"]), int(value["alu_uops"]),
                      {str(k): int(v) for k, v in value["dram_bytes"].items()}, int(value["bus_bytes"]),
                      DecodedStream(value["words"], env), **{k: arrays[k] for k in
                                                             ("fetch_start", "fetch_end", "issue", "start", "end")})
    except (KeyError, TypeError, ValueError) as e:
        raise RemoteError(f"rpc timing reply is malformed: {e}") from None
