"""Physically contiguous DMA buffers: ``pynq.allocate`` on the board, a file-backed pool for the emulator.

Both hand out :class:`DmaBuffer` objects: a uint8 numpy view, the physical address the device
uses, and flush/invalidate. The board's buffers are cacheable, so the owner flushes after the CPU
writes and before the device reads, and invalidates after the device writes; on the Pynq's ACP
port both are cheap no-ops in effect (spec §4.9) but they keep the code right for non-coherent
designs. The emulator's memory is one shared file, which is coherent by construction.
"""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
from collections.abc import Callable

import numpy as np

from vta.config import MAX_XFER, PAGE_BYTES
from vta.errors import BackendError, DeviceError

__all__ = ["DmaBuffer", "FileAllocator", "PynqAllocator"]


class DmaBuffer:
    """One device-visible buffer: ``array`` (uint8), ``phys_addr``, cache maintenance, ``free``."""

    def __init__(self, array: np.ndarray, phys_addr: int, release: Callable[[], None],
                 flush: Callable[[], None] | None = None, invalidate: Callable[[], None] | None = None):
        self.array = array
        self.phys_addr = int(phys_addr)
        self.nbytes = int(array.nbytes)
        self._release: Callable[[], None] | None = release
        self._flush, self._invalidate = flush, invalidate

    @property
    def alive(self) -> bool:
        return self._release is not None

    def _live(self) -> None:
        if self._release is None:
            raise BackendError(f"DMA buffer at 0x{self.phys_addr:x} was already freed")

    def flush(self) -> None:
        """Make CPU writes visible to the device (before the device reads)."""
        self._live()
        if self._flush is not None:
            self._flush()

    def invalidate(self) -> None:
        """Drop stale cache lines so the CPU sees what the device wrote (after it writes)."""
        self._live()
        if self._invalidate is not None:
            self._invalidate()

    def free(self) -> None:
        self._live()
        release, self._release = self._release, None
        release()


def _check_size(nbytes: int) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or not 0 < nbytes <= MAX_XFER:
        raise BackendError(f"DMA buffer size must be an integer in 1..{MAX_XFER} (VTA_MAX_XFER), got {nbytes!r}")
    return int(nbytes)


class PynqAllocator:
    """Cacheable CMA buffers from ``pynq.allocate`` (the board's Xilinx driver stack)."""

    def __init__(self) -> None:
        try:
            import pynq
        except ImportError as e:
            raise DeviceError('board buffers need the pynq package: on the board, pip install ".[board]" in the '
                              "pynq-vta checkout (the Pynq image usually has pynq already)") from e
        self._allocate = pynq.allocate

    def alloc(self, nbytes: int) -> DmaBuffer:
        nbytes = _check_size(nbytes)
        try:
            buf = self._allocate(shape=(nbytes,), dtype=np.uint8, cacheable=True)
        except (RuntimeError, MemoryError, OSError) as e:
            raise DeviceError(f"pynq.allocate could not provide {nbytes} contiguous bytes: {e}") from e
        return DmaBuffer(buf, buf.physical_address, buf.freebuffer, buf.flush, buf.invalidate)

    def close(self) -> None:
        """Buffers are freed one by one; pynq keeps no per-allocator state."""


class FileAllocator:
    """First-fit page allocator over a pool of the emulator file's DRAM (offset == physical address)."""

    def __init__(self, path: str | os.PathLike[str], pool_base: int = 0x18000000, pool_bytes: int = 128 << 20):
        if pool_base % PAGE_BYTES or pool_bytes % PAGE_BYTES or pool_bytes <= 0 or pool_base + pool_bytes > 1 << 32:
            raise DeviceError(f"emulator DMA pool 0x{pool_base:x}+0x{pool_bytes:x} must be page-aligned and "
                              "inside the 32-bit address space")
        self.path, self.pool_base, self.pool_bytes = os.fspath(path), pool_base, pool_bytes
        self._mm = self._map(pool_base, pool_bytes)
        self._pool = np.frombuffer(self._mm, np.uint8)
        self._free: list[tuple[int, int]] = [(0, pool_bytes)]  # (offset, bytes), sorted by offset
        self._extra: list[mmap.mmap] = []

    def _map(self, phys: int, nbytes: int) -> mmap.mmap:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            raise DeviceError(f"cannot open emulator file {self.path}: {e.strerror}") from e
        try:
            return mmap.mmap(fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=phys)
        except (OSError, ValueError) as e:
            raise DeviceError(f"cannot map 0x{nbytes:x} bytes at 0x{phys:x} of {self.path}: {e}") from e
        finally:
            os.close(fd)

    def alloc(self, nbytes: int) -> DmaBuffer:
        size = -(-_check_size(nbytes) // PAGE_BYTES) * PAGE_BYTES
        for i, (off, room) in enumerate(self._free):
            if room >= size:
                self._free[i:i + 1] = [(off + size, room - size)] if room > size else []
                view = self._pool[off:off + nbytes]
                view[:] = 0
                return DmaBuffer(view, self.pool_base + off, lambda o=off, s=size: self._release(o, s))
        raise DeviceError(f"emulator DMA pool (0x{self.pool_base:x}, {self.pool_bytes >> 20} MiB) cannot fit "
                          f"{nbytes} more bytes; free buffers or use a larger pool")

    def _release(self, off: int, size: int) -> None:
        i = bisect.bisect(self._free, (off, size))
        self._free.insert(i, (off, size))
        merged: list[tuple[int, int]] = []
        for o, s in self._free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        self._free = merged

    def at(self, phys_addr: int, nbytes: int) -> DmaBuffer:
        """A buffer at a fixed physical address outside the pool (golden vectors cannot be relocated)."""
        start = phys_addr - phys_addr % PAGE_BYTES
        end = -(-(phys_addr + nbytes) // PAGE_BYTES) * PAGE_BYTES
        if nbytes <= 0 or end > 1 << 32 or not (end <= self.pool_base or start >= self.pool_base + self.pool_bytes):
            raise DeviceError(f"cannot map {nbytes} bytes at 0x{phys_addr:x}: outside the address space or "
                              f"overlapping the DMA pool at 0x{self.pool_base:x}")
        mm = self._map(start, end - start)
        self._extra.append(mm)
        view = np.frombuffer(mm, np.uint8)[phys_addr - start:phys_addr - start + nbytes]
        return DmaBuffer(view, phys_addr, lambda: None)

    def close(self) -> None:
        """Unmap the pool; numpy views into it must be gone (buffers freed) by now."""
        for mm in [self._mm, *self._extra]:
            with contextlib.suppress(BufferError):  # a caller still holds a view; it unmaps when that goes
                mm.close()
        self._extra = []
