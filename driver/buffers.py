"""Physically contiguous DMA buffers: ``pynq.allocate`` on the board, a file-backed pool for the emulator.

Both hand out :class:`DmaBuffer` objects: a uint8 numpy view, the physical address the device
uses, and ranged cache maintenance (flush after CPU writes, invalidate before CPU reads of device
writes), counted in the allocator's :class:`CacheStats`.

Coherence (spec §3.1, §4.9): in the Pynq VTA block design every accelerator master (fetch, load,
compute, store) reaches DRAM through the Zynq's S_AXI_ACP port, which snoops the Cortex-A9 caches,
and the reference runtime never calls cma_flush_cache/cma_invalidate_cache there. So on a
``coherent`` allocator (the default: every VTA target's bitstream uses ACP) maintenance is a
no-op and counts 0 bytes, while buffers stay cacheable for fast CPU access. A non-coherent design
(``coherent=False``) maintains exactly the byte ranges each copy touched, rounded out to cache
lines: ``pynq`` flushes a slice of the buffer (a PynqBuffer slice flushes only its own range);
the emulator's memory is one shared file, coherent by construction, so there it only counts what
a non-coherent board would have had to do.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vta.config import MAX_XFER, PAGE_BYTES
from vta.errors import BackendError, DeviceError
from vta.sim.dram import Dram, DramBuffer

__all__ = ["CACHE_LINE", "CacheStats", "DmaBuffer", "FileAllocator", "PynqAllocator"]

CACHE_LINE = 32  # Cortex-A9 L1/L2 line size in bytes: maintenance works on whole lines


@dataclass
class CacheStats:
    """Bytes (whole cache lines) flushed and invalidated, and how many operations did it."""

    flushed: int = 0
    invalidated: int = 0
    operations: int = 0

    def count(self, kind: str, nbytes: int) -> None:
        setattr(self, kind, getattr(self, kind) + nbytes)
        self.operations += 1


Maintain = Callable[[str, int, int], None]  # (kind "flushed"/"invalidated", offset, nbytes) of a line-aligned range


class DmaBuffer:
    """One device-visible buffer: ``array`` (uint8), ``phys_addr``, ranged cache maintenance, ``free``."""

    def __init__(self, array: np.ndarray, phys_addr: int, release: Callable[[], None],
                 maintain: Maintain | None = None):
        self.array = array
        self.phys_addr = int(phys_addr)
        self.nbytes = int(array.nbytes)
        self._release: Callable[[], None] | None = release
        self._maintain = maintain

    @property
    def alive(self) -> bool:
        return self._release is not None

    def _live(self) -> None:
        if self._release is None:
            raise BackendError(f"DMA buffer at 0x{self.phys_addr:x} was already freed")

    def _lines(self, kind: str, offset: int, nbytes: int | None) -> None:
        self._live()
        nbytes = self.nbytes - offset if nbytes is None else nbytes
        if offset < 0 or nbytes < 0 or offset + nbytes > self.nbytes:
            raise BackendError(f"cache maintenance of {nbytes} bytes at offset {offset} is outside the "
                               f"{self.nbytes}-byte DMA buffer at 0x{self.phys_addr:x}")
        if self._maintain is None or nbytes == 0:
            return
        lo = (self.phys_addr + offset) // CACHE_LINE * CACHE_LINE - self.phys_addr
        hi = -(-(self.phys_addr + offset + nbytes) // CACHE_LINE) * CACHE_LINE - self.phys_addr
        self._maintain(kind, max(lo, 0), min(hi, self.nbytes) - max(lo, 0))

    def flush(self, offset: int = 0, nbytes: int | None = None) -> None:
        """Make CPU writes to ``[offset, offset + nbytes)`` (default: all) visible to the device."""
        self._lines("flushed", offset, nbytes)

    def invalidate(self, offset: int = 0, nbytes: int | None = None) -> None:
        """Drop stale cache lines of ``[offset, offset + nbytes)`` so the CPU sees what the device wrote."""
        self._lines("invalidated", offset, nbytes)

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

    def __init__(self, coherent: bool = True) -> None:
        try:
            import pynq
        except ImportError as e:
            raise DeviceError("board buffers need the pynq package (PYNQ 3.x board image): run "
                              "'pip install \".[board]\"' from the pynq-vta checkout on the board") from e
        self._allocate = pynq.allocate
        self.coherent = coherent
        self.cache = CacheStats()

    def alloc(self, nbytes: int) -> DmaBuffer:
        nbytes = _check_size(nbytes)
        try:
            buf = self._allocate(shape=(nbytes,), dtype=np.uint8, cacheable=True)
        except (RuntimeError, MemoryError, OSError) as e:
            raise DeviceError(f"pynq.allocate could not provide {nbytes} contiguous bytes: {e}") from e

        def maintain(kind: str, offset: int, size: int) -> None:
            part = buf[offset:offset + size]  # a PynqBuffer slice maintains only its own range
            part.flush() if kind == "flushed" else part.invalidate()
            self.cache.count(kind, size)

        return DmaBuffer(buf, buf.physical_address, buf.freebuffer, None if self.coherent else maintain)

    def close(self) -> None:
        """Buffers are freed one by one; pynq keeps no per-allocator state."""


class FileAllocator:
    """DMA buffers from a pool of the emulator file's DRAM (offset == physical address), placed by
    the simulator's page allocator (:class:`vta.sim.dram.Dram`) over that window of the file."""

    def __init__(self, path: str | os.PathLike[str], pool_base: int = 0x18000000, pool_bytes: int = 128 << 20,
                 coherent: bool = True):
        if pool_base % PAGE_BYTES or pool_bytes % PAGE_BYTES or pool_bytes <= 0 or pool_base + pool_bytes > 1 << 32:
            raise DeviceError(f"emulator DMA pool 0x{pool_base:x}+0x{pool_bytes:x} must be page-aligned and "
                              "inside the 32-bit address space")
        self.path, self.pool_base, self.pool_bytes = os.fspath(path), pool_base, pool_bytes
        self.coherent = coherent
        self.cache = CacheStats()
        self._mm = self._map(pool_base, pool_bytes)
        pool = np.frombuffer(self._mm, np.uint8)
        self._dram = Dram(pool_base, pool_base + pool_bytes,
                          storage=lambda phys, n: pool[phys - pool_base:phys - pool_base + n])
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

    def _maintain(self, kind: str, offset: int, size: int) -> None:
        """The shared file needs no maintenance; count what a non-coherent board would have done."""
        self.cache.count(kind, size)

    def alloc(self, nbytes: int) -> DmaBuffer:
        nbytes = _check_size(nbytes)
        try:
            block = self._dram.alloc(nbytes)
        except BackendError as e:
            raise DeviceError(f"emulator DMA pool (0x{self.pool_base:x}, {self.pool_bytes >> 20} MiB) cannot fit "
                              f"{nbytes} more bytes; free buffers or use a larger pool") from e
        return DmaBuffer(block.data, block.phys_addr, lambda b=block: self._release(b),
                         None if self.coherent else self._maintain)

    def _release(self, block: DramBuffer) -> None:
        self._dram.free(block)

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
        return DmaBuffer(view, phys_addr, lambda: None, None if self.coherent else self._maintain)

    def close(self) -> None:
        """Unmap the pool; numpy views into it must be gone (buffers freed) by now."""
        for mm in [self._mm, *self._extra]:
            with contextlib.suppress(BufferError):  # a caller still holds a view; it unmaps when that goes
                mm.close()
        self._extra = []
