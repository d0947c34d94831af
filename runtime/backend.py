"""The backend interface every device implements, and the registry that picks one by name.

A backend owns physically contiguous buffers and runs instruction streams; nothing more. The
public methods check their arguments once (sizes, live and owned buffers, a timeout) and turn a
backend's low-level failure into :class:`~vta.errors.DeviceError`; a backend writes only the
underscore hooks. The runtime never compares backend names: it asks ``capabilities``.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vta.config import MAX_XFER, Environment
from vta.errors import BackendError, DeviceError, VTAError

if TYPE_CHECKING:
    from vta.sim.perf import Timing

__all__ = ["BACKENDS", "TARGET_BACKENDS", "Backend", "RunStatus", "backend_for_target", "create_backend"]

# name -> "module:Class", imported only when asked for (spec: no heavy work at import).
BACKENDS: dict[str, str] = {
    "sim": "vta.runtime.backends.sim:SimBackend",
    "pynq": "vta.runtime.backends.board:BoardBackend",
    "rpc": "vta.runtime.backends.remote:RemoteBackend",
}
# config TARGET -> backend name; the Pynq driver also serves ultra96/zcu104 (spec §5.1).
TARGET_BACKENDS = {"sim": "sim", "tsim": "sim", "pynq": "pynq", "ultra96": "pynq", "zcu104": "pynq"}


@dataclass(frozen=True)
class RunStatus:
    """A completed run: how many instructions, wall time, and the device counters if it has them.

    ``predict`` computes the run's predicted Pynq-Z1 :class:`~vta.sim.perf.Timing` when called, so
    a run pays for the model only if someone asks; None unless the backend has ``timing``.
    """

    insn_count: int
    elapsed_s: float
    counters: Mapping[str, int] | None
    predict: Callable[[], Timing] | None = field(default=None, repr=False, compare=False)


class Backend(ABC):
    """One device behind the runtime: buffers (numpy view + physical address), copies, runs.

    Subclasses set ``name`` and ``capabilities`` and implement the hooks; the public methods
    here validate. Capabilities used by the runtime: ``counters`` (``counters()`` works) and
    ``timing`` (``timing()`` works: the hook ``_predictor`` gives each run its prediction).
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._live: dict[int, tuple[Any, int]] = {}  # id(handle) -> (handle, nbytes)
        self._reset_hooks: list[Callable[[], None]] = []
        self._last_run: RunStatus | None = None

    def _check_buffer(self, buf: Any, what: str) -> int:
        entry = self._live.get(id(buf))
        if entry is None or entry[0] is not buf:
            raise BackendError(f"{self.name} backend: {what} got a buffer that is not a live buffer of this backend "
                               "(freed already, or allocated by another backend)")
        return entry[1]

    # --- buffers --------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> Any:
        """A physically contiguous buffer of ``nbytes`` (1..VTA_MAX_XFER); its handle is backend-specific."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or not 0 < nbytes <= MAX_XFER:
            raise BackendError(f"{self.name} backend: alloc size must be an integer in 1..{MAX_XFER} "
                               f"(VTA_MAX_XFER), got {nbytes!r}")
        buf = self._guard("alloc", lambda: self._alloc(int(nbytes)))
        self._live[id(buf)] = (buf, int(nbytes))
        return buf

    def alloc_at(self, phys_addr: int, nbytes: int) -> Any:
        """A buffer at a fixed physical address; only devices with the ``fixed_address`` capability
        (simulator, emulated board) can place one, for streams that cannot be relocated."""
        if "fixed_address" not in self.capabilities:
            raise BackendError(f"{self.name} backend cannot place buffers at fixed physical addresses "
                               f"(capabilities: {', '.join(sorted(self.capabilities)) or 'none'})")
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes <= 0:
            raise BackendError(f"{self.name} backend: alloc_at size must be a positive integer, got {nbytes!r}")
        buf = self._guard("alloc_at", lambda: self._alloc_at(int(phys_addr), int(nbytes)))
        self._live[id(buf)] = (buf, int(nbytes))
        return buf

    def _alloc_at(self, phys_addr: int, nbytes: int) -> Any:
        raise BackendError(f"{self.name} backend has no fixed-address allocation")

    def free(self, buf: Any) -> None:
        """Give the buffer back; any later use of it raises BackendError."""
        self._check_buffer(buf, "free")
        del self._live[id(buf)]
        self._guard("free", lambda: self._free(buf))

    def phys(self, buf: Any) -> int:
        """Physical byte address the device uses for the buffer (page-aligned)."""
        self._check_buffer(buf, "phys")
        return int(self._phys(buf))

    def view(self, buf: Any) -> np.ndarray:
        """The host's 1-D uint8 view of the buffer's bytes (writes are seen after ``flush``)."""
        self._check_buffer(buf, "view")
        return self._view(buf)

    def copy_in(self, buf: Any, offset: int, data: bytes | np.ndarray) -> None:
        """Copy host bytes into the buffer at ``offset`` and make them visible to the device."""
        raw = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else \
            np.ascontiguousarray(data).view(np.uint8).ravel()
        self._range(buf, offset, len(raw), "copy_in")
        self._guard("copy_in", lambda: self._copy_in(buf, offset, raw))

    def copy_out(self, buf: Any, offset: int, nbytes: int) -> np.ndarray:
        """A uint8 copy of ``nbytes`` device-written bytes from ``offset``."""
        self._range(buf, offset, nbytes, "copy_out")
        return self._guard("copy_out", lambda: self._copy_out(buf, offset, nbytes))

    def flush(self, buf: Any) -> None:
        """Make host writes through ``view`` visible to the device (no-op on coherent memory, spec §4.9)."""
        self._check_buffer(buf, "flush")
        self._guard("flush", lambda: self._flush(buf))

    def invalidate(self, buf: Any) -> None:
        """Make device writes visible to the host's ``view`` (no-op on coherent memory, spec §4.9)."""
        self._check_buffer(buf, "invalidate")
        self._guard("invalidate", lambda: self._invalidate(buf))

    def _range(self, buf: Any, offset: int, nbytes: int, what: str) -> None:
        size = self._check_buffer(buf, what)
        if not (isinstance(offset, (int, np.integer)) and isinstance(nbytes, (int, np.integer))) \
                or offset < 0 or nbytes < 0 or offset + nbytes > size:
            raise BackendError(f"{self.name} backend: {what} of {nbytes!r} bytes at offset {offset!r} does not fit "
                               f"the {size}-byte buffer at 0x{self._phys(buf):x}")

    # --- running --------------------------------------------------------------------------
    def run(self, insn_phys: int, insn_count: int, timeout_s: float) -> RunStatus:
        """Run ``insn_count`` instructions at ``insn_phys`` until FINISH, within ``timeout_s`` seconds.

        The stream must already be verified (the runtime does this); a device failure raises
        DeviceError or DeviceTimeout, never a silent status.
        """
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise BackendError(f"{self.name} backend: run needs a positive timeout in seconds, got {timeout_s!r}")
        if not isinstance(insn_count, (int, np.integer)) or insn_count <= 0:
            raise BackendError(f"{self.name} backend: run needs a positive instruction count, got {insn_count!r}")
        start = time.perf_counter()
        counters = self._guard("run", lambda: self._run(int(insn_phys), int(insn_count), float(timeout_s)))
        self._last_run = RunStatus(int(insn_count), time.perf_counter() - start, counters, self._predictor())
        return self._last_run

    def require(self, capability: str, what: str) -> None:
        """Raise BackendError naming ``what`` and the capabilities this backend has, unless it has ``capability``."""
        if capability not in self.capabilities:
            raise BackendError(f"{self.name} backend has no {what} (capabilities: "
                               f"{', '.join(sorted(self.capabilities)) or 'none'})")

    def counters(self) -> dict[str, int]:
        """The seven profiler counters of the last run (spec §3.9); needs the ``counters`` capability."""
        self.require("counters", "performance counters")
        return dict(self._counters())

    def timing(self) -> Timing:
        """The predicted Pynq-Z1 timing of the last successful run (:mod:`vta.sim.perf`), computed on
        first access; needs the ``timing`` capability. BackendError without it or before any run."""
        self.require("timing", "timing model")
        if self._last_run is None or self._last_run.predict is None:
            raise BackendError(f"{self.name} backend: timing() before any run completed on it")
        return self._last_run.predict()

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` whenever the device is reset, so owners of queued state can drop it."""
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Return the device to a clean state (SRAM, token FIFOs) and run the reset hooks."""
        self._guard("reset", self._reset)
        for hook in list(self._reset_hooks):
            hook()

    def close(self) -> None:
        """Free every live buffer and release the device (idempotent)."""
        for buf, _ in list(self._live.values()):
            self.free(buf)
        self._guard("close", self._close)

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except VTAError:
            raise
        except (OSError, RuntimeError, MemoryError, ValueError) as e:
            raise DeviceError(f"{self.name} backend: {what} failed: {e}") from e

    # --- hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _alloc(self, nbytes: int) -> Any: ...

    @abstractmethod
    def _free(self, buf: Any) -> None: ...

    @abstractmethod
    def _phys(self, buf: Any) -> int: ...

    @abstractmethod
    def _view(self, buf: Any) -> np.ndarray: ...

    @abstractmethod
    def _copy_in(self, buf: Any, offset: int, data: np.ndarray) -> None: ...

    @abstractmethod
    def _copy_out(self, buf: Any, offset: int, nbytes: int) -> np.ndarray: ...

    @abstractmethod
    def _run(self, insn_phys: int, insn_count: int, timeout_s: float) -> Mapping[str, int] | None: ...

    def _flush(self, buf: Any) -> None:
        """Coherent memory by default."""
        return None

    def _invalidate(self, buf: Any) -> None:
        """Coherent memory by default."""
        return None

    def _counters(self) -> Mapping[str, int]:
        raise BackendError(f"{self.name} backend declares counters but does not read them")

    def _predictor(self) -> Callable[[], Timing] | None:
        """Called right after a successful ``_run``: a callable predicting that run, or None (no model)."""
        return None

    def _reset(self) -> None:
        """Nothing to reset by default."""
        return None

    def _close(self) -> None:
        """Nothing to release by default."""
        return None


def backend_for_target(target: str) -> str:
    """The backend name for a config TARGET, or BackendError listing the targets that have one."""
    name = TARGET_BACKENDS.get(target)
    if name is None:
        raise BackendError(f"no runtime backend for TARGET={target!r}; targets with a backend: "
                           f"{', '.join(f'{t} ({b})' for t, b in TARGET_BACKENDS.items())}")
    return name


def create_backend(name: str, env: Environment, **options: Any) -> Backend:
    """Import and construct the backend registered as ``name`` (options go to its constructor)."""
    spec = BACKENDS.get(name)
    if spec is None:
        raise BackendError(f"unknown runtime backend {name!r}; valid names: {', '.join(BACKENDS)}")
    module_name, cls_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not module_name.startswith(e.name):
            raise
        raise BackendError(f"runtime backend {name!r} is not available: {module_name} is not part of this "
                           "install yet") from e
    return getattr(module, cls_name)(env, **options)
