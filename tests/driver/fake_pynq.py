"""A strict, scripted stand-in for the board-only ``pynq`` library (PYNQ 3.x), injected into sys.modules.

PYNQ tests its own drivers against a fake device that records every call; this does the same
for the part of ``pynq`` the board path uses: ``Bitstream(path).download()`` and
``allocate(shape, dtype, cacheable=...)`` returning buffers with ``physical_address``,
``flush``, ``invalidate`` and ``freebuffer``. It is stricter than forgiving: it raises where
real PYNQ fails, so code that passes here keeps PYNQ's order on a board:

- ``allocate`` before any bitstream was loaded (PYNQ allocates through the loaded design);
- loading a bitstream while buffers are allocated (XRT will not swap the design under live
  buffer objects);
- flushing, invalidating or freeing a freed buffer;
- finding the device (``Device.active_device``, on first ``allocate`` or ``Bitstream``) in a
  thread without an asyncio event loop: PYNQ 3.x's ``XrtDevice.__init__`` (the base of the
  Zynq's ``EmbeddedDevice``) calls ``asyncio.get_event_loop()``, and PYNQ keeps the empty device
  list it started, so every later use says "No Devices Found" (pynq/pl_server/device.py).

Memory is a first-fit page allocator over a pool of "DRAM" (a private array, or a window of an
emulator file, so the emulated board DMAs from the same bytes). By default the CPU's array is
the DRAM itself, as on the Pynq-Z1 where VTA's ACP port keeps cacheable buffers coherent; with
``coherent=False`` the array is the CPU's own (cached) copy, which reaches DRAM only on
``flush`` and sees device writes only after ``invalidate``. Newly allocated DRAM holds stale bytes (0xA5),
as CMA memory is never cleared for the next user; a freed buffer's array and DRAM are poisoned
(0xDE), so anything still reading through an old array after a free sees garbage, as it would
fault on a board where freeing unmaps it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

PAGE = 4096
STALE, POISON = 0xA5, 0xDE


class FakeBuffer(np.ndarray):
    """A ``pynq.allocate`` result: the CPU's (cached) bytes, a physical address, and the cache calls."""

    physical_address: int
    _owner: FakePynq | None

    def __array_finalize__(self, obj: object) -> None:
        # As PYNQ's PynqBuffer: a slice or view keeps its allocation and sits at its own physical address,
        # so its flush/invalidate cover just its bytes.
        self._root = getattr(obj, "_root", None)
        self._owner = getattr(obj, "_owner", None)
        if isinstance(obj, FakeBuffer) and self._root is not None:
            offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
            self.physical_address = obj.physical_address + offset
        else:
            self.physical_address = getattr(obj, "physical_address", 0)

    def _state(self, what: str) -> FakePynq:
        owner, root = self._owner, self._root
        if owner is None or root is None or owner.live.get(root.physical_address) is not root:
            raise RuntimeError(f"pynq buffer at 0x{self.physical_address:x}: {what} of a freed buffer")
        return owner

    @property
    def device_address(self) -> int:
        return self.physical_address

    def _dram(self, owner: FakePynq) -> np.ndarray:
        off = self.physical_address - owner.base
        return owner.memory[off:off + self.nbytes]

    def flush(self) -> None:
        owner = self._state("flush")
        if not owner.coherent:
            self._dram(owner)[:] = self.view(np.uint8).reshape(-1)
        owner.calls.append(("flush", self.physical_address, self.nbytes))

    def invalidate(self) -> None:
        owner = self._state("invalidate")
        if not owner.coherent:
            self.view(np.uint8).reshape(-1)[:] = self._dram(owner)
        owner.calls.append(("invalidate", self.physical_address, self.nbytes))

    def freebuffer(self) -> None:
        owner = self._state("freebuffer")
        if self._root is not self:
            raise RuntimeError(f"pynq buffer at 0x{self.physical_address:x}: freebuffer of a slice")
        del owner.live[self.physical_address]
        self.view(np.uint8).reshape(-1)[:] = POISON
        owner._release(self.physical_address, -(-self.nbytes // PAGE) * PAGE)
        owner.calls.append(("free", self.physical_address))


class FakePynq(types.ModuleType):
    """The fake ``pynq`` module. Script it through ``failure``, ``on_download`` and :meth:`reserve`.

    ``calls`` records ("download", path), ("allocate", nbytes, phys), ("flush"|"invalidate", phys, nbytes),
    ("free", phys).
    ``loaded`` is the bitstream on the FPGA (PL state, which outlives a process).
    """

    def __init__(self, memory: np.ndarray | None = None, base: int = 0x16900000, size: int = 16 << 20,
                 coherent: bool = True):
        super().__init__("pynq")
        self.coherent = coherent
        self.memory = memory if memory is not None else np.zeros(size, np.uint8)
        self.base, self.size = base, int(self.memory.nbytes)
        self.calls: list[tuple] = []
        self.downloads: list[str] = []
        self.loaded: str | None = None
        self.failure: BaseException | None = None
        self.on_download: Callable[[], None] | None = None
        self.live: dict[int, FakeBuffer] = {}  # phys -> the allocated buffer
        self._free: list[tuple[int, int]] = [(0, self.size)]
        fake = self

        class DeviceMeta(type):
            @property
            def devices(cls) -> list:
                if not hasattr(cls, "_devices"):
                    cls._devices = []  # set before probing, as PYNQ does: a failed probe leaves it empty
                    if threading.current_thread() is not threading.main_thread():
                        asyncio.get_event_loop_policy().get_event_loop()  # raises without a loop in this thread
                    cls._devices.append(cls())
                return cls._devices

            @property
            def active_device(cls) -> object:
                if not cls.devices:
                    raise RuntimeError("No Devices Found")
                return cls.devices[0]

        class Device(metaclass=DeviceMeta):
            pass

        class Bitstream:
            def __init__(self, path: str):
                self.bitfile_name = path
                self.device = Device.active_device

            def download(self) -> None:
                fake._download(self.bitfile_name)

        self.Device, self.Bitstream = Device, Bitstream

    # --- the pynq API --------------------------------------------------------------------
    def allocate(self, shape: tuple[int, ...], dtype: object = "u4", target: object = None,
                 cacheable: bool = True) -> FakeBuffer:
        _ = self.Device.active_device if target is None else target
        if self.loaded is None:
            raise RuntimeError("No bitstream loaded: pynq.allocate needs an Overlay or Bitstream downloaded first")
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        size = -(-nbytes // PAGE) * PAGE
        off = self._take(size)
        self.memory[off:off + size] = STALE
        cpu = self.memory[off:off + nbytes]
        if not self.coherent:
            cpu = cpu.copy()  # the cache starts out agreeing with DRAM
        buf = cpu.view(dtype).reshape(shape).view(FakeBuffer)
        buf.physical_address = self.base + off
        buf._owner, buf._root = self, buf
        self.live[buf.physical_address] = buf
        self.calls.append(("allocate", nbytes, buf.physical_address))
        return buf

    def _download(self, path: str) -> None:
        self.calls.append(("download", path))
        if self.live:
            raise RuntimeError(f"cannot load {path}: {len(self.live)} buffer(s) are still allocated "
                               "(free them before re-programming)")
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", path)
        if self.failure is not None:
            raise self.failure
        self.loaded = str(path)
        self.downloads.append(str(path))
        if self.on_download is not None:
            self.on_download()

    # --- scripting -----------------------------------------------------------------------
    def reserve(self, phys: int, nbytes: int) -> None:
        """Another process takes ``[phys, phys + nbytes)`` of the pool (it must be free)."""
        off, size = phys - self.base, -(-nbytes // PAGE) * PAGE
        for i, (o, s) in enumerate(self._free):
            if o <= off and off + size <= o + s:
                self._free[i:i + 1] = [(a, b) for a, b in ((o, off - o), (off + size, o + s - off - size)) if b]
                return
        raise AssertionError(f"0x{phys:x}+{nbytes} is not free in the fake CMA pool")

    # --- the pool -------------------------------------------------------------------------
    def _take(self, size: int) -> int:
        for i, (off, room) in enumerate(self._free):
            if room >= size:
                self._free[i:i + 1] = [(off + size, room - size)] if room > size else []
                return off
        raise RuntimeError(f"Failed to allocate {size} bytes: the CMA pool is exhausted")

    def _release(self, phys: int, size: int) -> None:
        off = phys - self.base
        self.memory[off:off + size] = POISON
        merged: list[tuple[int, int]] = []
        for o, s in sorted([*self._free, (off, size)]):
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        self._free = merged


def emulator_memory(path: str | os.PathLike[str], base: int, size: int) -> np.ndarray:
    """A window of an emulator file as the fake's pool, so the emulated board sees what pynq buffers hold."""
    import mmap

    fd = os.open(Path(path), os.O_RDWR)
    try:
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=base)
    finally:
        os.close(fd)
    return np.frombuffer(mm, np.uint8)
