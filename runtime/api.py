"""The user-facing runtime: device buffers, one command queue, verify-then-launch.

``Runtime`` plays the reference's thread-local ``CommandQueue`` owner (spec §4.1): it holds a
backend, the instruction and micro-op DRAM buffers, the verifier and the queue. Every
synchronize writes the stream and micro-ops to DRAM, verifies them against this runtime's live
buffers, and only then lets the backend run them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vta.config import Environment, get_env
from vta.errors import BackendError
from vta.runtime.backend import Backend, RunStatus, backend_for_target, create_backend
from vta.runtime.deps import InsnBuffer
from vta.runtime.queue import DEBUG_DUMP_INSN, CommandQueue
from vta.runtime.verify import Verifier

if TYPE_CHECKING:
    from vta.sim.perf import Timing

__all__ = ["DEFAULT_INSN_CAPACITY", "DEFAULT_UOP_CAPACITY", "DeviceBuffer", "Runtime", "RuntimeStats", "get_runtime"]

# Default instruction/micro-op buffers: 1 MiB each, sized for the Pynq's 128 MiB CMA pool.
DEFAULT_INSN_CAPACITY = (1 << 20) // 16
DEFAULT_UOP_CAPACITY = (1 << 20) // 4


class DeviceBuffer:
    """A physically contiguous buffer the device can DMA: address, size, numpy view, copies.

    Example
    -------
    >>> buf = get_runtime().alloc(256)
    >>> buf.copy_from(np.arange(256, dtype=np.uint8))
    >>> int(buf.view(np.int32, (64,))[1])
    117835012
    """

    __slots__ = ("_handle", "_rt", "nbytes", "phys_addr")

    def __init__(self, rt: Runtime, handle: Any, phys_addr: int, nbytes: int):
        self._rt, self._handle, self.phys_addr, self.nbytes = rt, handle, phys_addr, nbytes

    @property
    def alive(self) -> bool:
        return self._handle is not None

    def _live(self, what: str) -> Any:
        if self._handle is None:
            self._rt.check_open(what)
            raise BackendError(f"{what}: device buffer at 0x{self.phys_addr:x} ({self.nbytes} bytes) was freed")
        return self._handle

    def view(self, dtype: np.dtype | str = np.uint8, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A numpy view of the buffer's bytes (little-endian dtypes match the device)."""
        raw = self._rt.backend.view(self._live("view"))
        arr = raw.view(np.dtype(dtype))
        return arr if shape is None else arr.reshape(shape)

    def _checked_bytes(self, arr: object, what: str) -> np.ndarray:
        """``arr`` as the buffer's bytes: an integer numpy array (machine byte order) or bytes of exactly its size.

        Anything else would be copied as raw bytes of the wrong meaning (a list, floats) or leave
        stale bytes behind (a shorter array), so it is refused.
        """
        if isinstance(arr, (bytes, bytearray, memoryview)):
            raw, got = np.frombuffer(arr, np.uint8), f"{len(arr)} bytes"
        elif isinstance(arr, np.ndarray):
            if arr.dtype.kind not in "iu" or not arr.dtype.isnative:
                raise BackendError(f"{what}: expected an integer array in machine byte order (int8, uint8, int32, "
                                   f"...) or bytes, got a {arr.dtype} array")
            raw, got = arr, f"{arr.nbytes} ({'a' if arr.ndim else 'a 0-d'} {arr.shape} {arr.dtype} array)"
        else:
            raise BackendError(f"{what}: expected a numpy integer array or bytes, got {type(arr).__name__}")
        if raw.nbytes != self.nbytes:
            raise BackendError(f"{what}: expected {self.nbytes} bytes (the size of the device buffer at "
                               f"0x{self.phys_addr:x}), got {got}")
        return raw

    def copy_from(self, arr: np.ndarray | bytes) -> None:
        """Copy an integer array's bytes (C order) or ``bytes`` into the buffer; the sizes must match.

        Raises
        ------
        BackendError
            Not an integer array or bytes, a size other than the buffer's, a freed buffer or a closed runtime.
        """
        handle = self._live("copy_from")
        raw = self._checked_bytes(arr, "copy_from")
        if isinstance(raw, np.ndarray) and raw.dtype != np.uint8:
            raw = np.ascontiguousarray(raw).view(np.uint8).ravel()
        self._rt.backend.copy_in(handle, 0, raw.reshape(-1))

    def copy_to(self, arr: np.ndarray | None = None) -> np.ndarray:
        """Copy the buffer into ``arr`` (an integer array of the buffer's size), or return it as uint8 when None.

        Raises
        ------
        BackendError
            ``arr`` is not a C-contiguous integer array of the buffer's size, or the buffer/runtime is gone.
        """
        handle = self._live("copy_to")
        if arr is not None:
            if not isinstance(arr, np.ndarray):
                raise BackendError(f"copy_to: expected a numpy integer array, got {type(arr).__name__}")
            self._checked_bytes(arr, "copy_to")
            if not arr.flags.c_contiguous or not arr.flags.writeable:
                raise BackendError("copy_to: the destination array must be C-contiguous and writeable")
        data = self._rt.backend.copy_out(handle, 0, self.nbytes)
        if arr is None:
            return data
        arr.reshape(-1).view(np.uint8)[:] = data
        return arr

    def __repr__(self) -> str:
        state = "" if self.alive else ", freed"
        return f"DeviceBuffer(phys_addr=0x{self.phys_addr:x}, nbytes={self.nbytes}{state})"


@dataclass
class RuntimeStats:
    """Counts and host time since the runtime started (time inside the backend's run apart)."""

    runs: int = 0
    auto_flushes: int = 0
    instructions: int = 0
    run_s: float = 0.0
    verify_s: float = 0.0


class Runtime:
    """A VTA runtime over one backend: allocate buffers, build programs on ``queue``, synchronize.

    Parameters
    ----------
    backend : a registry name (``sim``, ``pynq``, ``rpc``), a Backend, or None for the config's TARGET.
    env : hardware configuration (default: the active one).
    insn_capacity : instructions per run before an automatic flush (default 65,536: a 1 MiB buffer).
    uop_capacity : micro-ops per run in the micro-op DRAM buffer (default 262,144: 1 MiB, 32 full micro-op SRAMs).
        Both buffers are physically contiguous; on the board they come from PYNQ's 128 MiB CMA pool, so the
        defaults leave almost all of it to data (the reference's VTA_MAX_XFER-sized buffers would take half).
    timeout_s : device timeout for automatic flushes.
    backend_options : passed to the backend constructor.

    Raises
    ------
    BackendError
        Unknown or unavailable backend, or no backend for the TARGET.

    Example
    -------
    >>> rt = Runtime("sim")
    >>> buf = rt.alloc(4096)
    >>> rt.queue.synchronize()      # an empty program: drain NOPs and FINISH
    >>> rt.close()
    """

    def __init__(self, backend: str | Backend | None = None, *, env: Environment | None = None,
                 insn_capacity: int = DEFAULT_INSN_CAPACITY, uop_capacity: int = DEFAULT_UOP_CAPACITY,
                 timeout_s: float = 10.0,
                 **backend_options: Any):
        self.env = env or get_env()
        self.closed = False
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            self.backend = create_backend(backend or backend_for_target(self.env.TARGET), self.env, **backend_options)
        for name, value, low in (("insn_capacity", insn_capacity, 8), ("uop_capacity", uop_capacity, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value:
                raise BackendError(f"Runtime {name} must be an integer >= {low}, got {value!r}")
        self.timeout_s = timeout_s
        self.stats = RuntimeStats()
        self.verifier = Verifier(self.env)
        self._buffers: dict[int, DeviceBuffer] = {}
        self._insn_buf = self.alloc(insn_capacity * 16)
        self._uop_buf = self.alloc(uop_capacity * self.env.UOP_ELEM_BYTES)
        self._uop_phys = self._uop_buf.phys_addr
        self.queue = CommandQueue(self, self.env, insn_capacity, uop_capacity)
        self.backend.on_reset(self.queue.reset)
        self.backend.on_reset(self._retrack)
        self._program_runs: list[RunStatus] = []  # the device runs of the last program that ran

    # --- buffers --------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> DeviceBuffer:
        """A device buffer of ``nbytes`` (page-aligned, 1..VTA_MAX_XFER bytes), zero-filled."""
        self.check_open("alloc")
        handle = self.backend.alloc(nbytes)
        buf = DeviceBuffer(self, handle, self.backend.phys(handle), int(nbytes))
        self.verifier.track(buf.phys_addr, self.backend.view(handle)[:buf.nbytes])
        self._buffers[buf.phys_addr] = buf
        return buf

    def _retrack(self) -> None:
        """After a reset the backend may have re-created buffers (same address, new memory): verify against those."""
        for buf in self._buffers.values():
            self.verifier.untrack(buf.phys_addr)
            try:
                view = self.backend.view(buf._handle)
            except BackendError:  # lost in the reset: any program that uses it is refused as dram_oob
                continue
            self.verifier.track(buf.phys_addr, view[:buf.nbytes])

    def alloc_at(self, phys_addr: int, nbytes: int) -> DeviceBuffer:
        """A device buffer at a fixed physical address (simulator or emulated board only), for
        pre-built streams such as golden vectors whose addresses cannot be relocated."""
        self.check_open("alloc_at")
        handle = self.backend.alloc_at(phys_addr, nbytes)
        buf = DeviceBuffer(self, handle, int(phys_addr), int(nbytes))
        self.verifier.track(buf.phys_addr, self.backend.view(handle)[:buf.nbytes])
        self._buffers[buf.phys_addr] = buf
        return buf

    def launch(self, buf: DeviceBuffer, insn_offset: int, insn_count: int, timeout_s: float | None = None) -> RunStatus:
        """Verify and run a stream someone else built, ``insn_count`` instructions at byte ``insn_offset``
        of ``buf``; like :meth:`CommandQueue.synchronize`, the device sees it only if the verifier accepts it.

        Raises
        ------
        ProgramError
            The verifier refused the stream; nothing ran.
        """
        lo, size = self._buffer_range(buf, "launch")
        hi, start = lo + size, lo + int(insn_offset)
        if insn_offset < 0 or insn_offset % 16 or start + 16 * int(insn_count) > hi:
            raise BackendError(f"launch: {insn_count} instructions at byte {insn_offset} do not lie on a "
                               f"16-byte boundary inside the {buf.nbytes}-byte buffer at 0x{lo:x}")
        self.backend.flush(buf._live("launch"))
        self.verifier.verify(start, int(insn_count))
        status = self.backend.run(start, int(insn_count), self.timeout_s if timeout_s is None else timeout_s)
        self.backend.invalidate(buf._live("launch"))
        self._program_runs = [status]
        self.stats.runs += 1
        self.stats.instructions += int(insn_count)
        return status

    def free(self, buf: DeviceBuffer) -> None:
        """Free a buffer; a queued or later instruction that uses it is refused as dram_oob."""
        self._buffer_range(buf, "free")
        handle, buf._handle = buf._handle, None
        del self._buffers[buf.phys_addr]
        self.verifier.untrack(buf.phys_addr)
        self.backend.free(handle)

    def check_open(self, what: str) -> None:
        """Raise BackendError when this runtime was closed: its buffers and backend are gone."""
        if self.closed:
            raise BackendError(f"{what}: runtime closed")

    def _buffer_range(self, buf: DeviceBuffer, what: str) -> tuple[int, int]:
        if not isinstance(buf, DeviceBuffer) or self._buffers.get(buf.phys_addr) is not buf:
            self.check_open(what)
            freed = isinstance(buf, DeviceBuffer) and not buf.alive
            state = "was freed" if freed else "is not a buffer of this runtime"
            raise BackendError(f"{what}: {buf!r} {state}")
        return buf.phys_addr, buf.nbytes

    @property
    def buffers(self) -> tuple[DeviceBuffer, ...]:
        """Live buffers of this runtime (the instruction and micro-op buffers included)."""
        return tuple(self._buffers.values())

    # --- launching ------------------------------------------------------------------------
    def _launch(self, insns: InsnBuffer, uops: np.ndarray, timeout_s: float, continued: bool,
                export_to: str | os.PathLike[str] | None) -> None:
        """Copy stream and micro-ops to DRAM, verify, (export,) run: the device sees only verified streams."""
        self.check_open("synchronize")
        stream = insns.to_bytes()
        count = len(insns)
        if (count * 16) > self._insn_buf.nbytes:
            raise BackendError(f"{count} instructions do not fit the {self._insn_buf.nbytes // 16}-instruction buffer")
        if len(uops):
            self.backend.copy_in(self._uop_buf._handle, 0, uops)
        self.backend.copy_in(self._insn_buf._handle, 0, stream)
        if self.queue.debug_flags & DEBUG_DUMP_INSN:
            _dump(self.queue.debug_out or sys.stdout, stream, self.env)
        start = time.perf_counter()
        self.verifier.verify(self._insn_buf.phys_addr, count, continued)
        self.stats.verify_s += time.perf_counter() - start
        image = None
        if export_to is not None:
            from vta.runtime.export import snapshot
            image = snapshot(self, stream, len(uops))
        status = self.backend.run(self._insn_buf.phys_addr, count, timeout_s)
        if continued:
            self._program_runs.append(status)
        else:
            self._program_runs = [status]
        self.stats.runs += 1
        self.stats.instructions += count
        self.stats.run_s += status.elapsed_s
        if image is not None:
            image.write(export_to, self, status)

    # --- timing ---------------------------------------------------------------------------
    def last_timing(self) -> Timing:
        """The predicted Pynq-Z1 timing of the last program that ran, to compare schedules without a board.

        The program is the last :meth:`CommandQueue.synchronize` or :meth:`launch` that reached the
        device. When a synchronize auto-flushed, its device runs are joined back to back
        (:func:`vta.sim.perf.concatenate`): the result covers the whole program. Computed on
        demand, so runs that nobody times cost nothing extra.

        Returns
        -------
        Timing
            cycles, seconds, per-module busy/stall, GEMM utilization, GOPS, DRAM bytes per memory type.

        Raises
        ------
        BackendError
            The backend has no timing model (it is not the simulator), or nothing has run yet.

        Example
        -------
        >>> rt = Runtime("sim")
        >>> rt.queue.synchronize()
        >>> rt.last_timing().cycles > 0
        True
        """
        self.check_open("last_timing")
        self.backend.require("timing", "timing model")
        runs = self._program_runs
        if not runs:
            raise BackendError("last_timing: no program has run on this runtime yet")
        from vta.sim.perf import concatenate

        return concatenate([status.predict() for status in runs])

    def close(self) -> None:
        """Free every buffer and release the backend (idempotent)."""
        if self.closed:
            return
        for buf in list(self._buffers.values()):
            self.free(buf)
        self.backend.close()
        self.closed = True

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dump(out: Any, stream: bytes, env: Environment) -> None:
    """VTA_DEBUG_DUMP_INSN: the decoded stream with running token counts per FIFO (spec §4.6 step 4)."""
    from vta.disasm import format_insn
    from vta.isa import DecodedStream

    s = DecodedStream(stream, env)
    tokens = {"l2g": 0, "g2l": 0, "g2s": 0, "s2g": 0}
    pops = {0: (None, "g2l"), 1: ("l2g", "s2g"), 2: ("g2s", None)}
    pushes = {0: (None, "l2g"), 1: ("g2l", "g2s"), 2: ("s2g", None)}
    print(f"There are {s.count} instructions", file=out)
    for i in range(s.count):
        insn, m = s.insn(i), int(s.module[i])
        for q, flag in zip(pops[m], (insn.pop_prev_dep, insn.pop_next_dep)):
            if q and flag:
                tokens[q] -= 1
        for q, flag in zip(pushes[m], (insn.push_prev_dep, insn.push_next_dep)):
            if q and flag:
                tokens[q] += 1
        counts = " ".join(f"{k}={v}" for k, v in tokens.items())
        print(f"INSTRUCTION {i}: {format_insn(insn)}  tokens {counts}", file=out)


_LOCAL = threading.local()


def get_runtime() -> Runtime:
    """This thread's default runtime (created on first use with the config's backend), as VTATLSCommandHandle."""
    rt = getattr(_LOCAL, "runtime", None)
    if rt is None or rt.closed:
        rt = _LOCAL.runtime = Runtime()
    return rt
