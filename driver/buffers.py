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

import asyncio
import contextlib
import mmap
import os
import threading
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

_MAX_FILLERS = 64  # allocations tried per buffer while looking for its old physical address


class DmaBuffer:
    """One device-visible buffer: ``array`` (uint8), ``phys_addr``, ranged cache maintenance, ``free``."""

    def __init__(self, array: np.ndarray, phys_addr: int, release: Callable[[], None],
                 maintain: Maintain | None = None):
        self._array = array
        self.phys_addr = int(phys_addr)
        self.nbytes = int(array.nbytes)
        self._release: Callable[[], None] | None = release
        self._maintain = maintain
        self._lost: str | None = None

    @property
    def alive(self) -> bool:
        return self._release is not None

    @property
    def array(self) -> np.ndarray:
        """The buffer's bytes; BackendError once freed or lost (the memory may be unmapped)."""
        self._live()
        return self._array

    def _live(self) -> None:
        if self._lost is not None:
            raise BackendError(self._lost)
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
        """Give the memory back; a lost buffer has none left, so freeing it only forgets it."""
        if self._lost is not None:
            self._lost = None
            return
        self._live()
        release, self._release = self._release, None
        release()

    def _lose(self, why: str) -> None:
        """The memory was released behind the owner's back (a re-programming): every later use raises ``why``."""
        self._lost, self._release = why, None

    def _adopt(self, other: DmaBuffer) -> None:
        """Take over ``other``'s memory, a re-allocation of this buffer at the same physical address."""
        assert (other.phys_addr, other.nbytes) == (self.phys_addr, self.nbytes)
        self.__dict__.update(other.__dict__)


def _check_size(nbytes: int) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or not 0 < nbytes <= MAX_XFER:
        raise BackendError(f"DMA buffer size must be an integer in 1..{MAX_XFER} (VTA_MAX_XFER), got {nbytes!r}")
    return int(nbytes)


_PYNQ_LOOP: asyncio.AbstractEventLoop | None = None  # lent to PYNQ's device probe outside the main thread


def _find_pynq_device(pynq: object) -> None:
    """Let PYNQ find its device now, also from a thread without an event loop.

    An rpc session (``vta rpc serve``) or a Dask worker opens the board in a thread of its own.
    PYNQ 3.x finds its device on first use, and ``XrtDevice.__init__`` (the base of the Zynq's
    ``EmbeddedDevice``) calls ``asyncio.get_event_loop()``, which raises in such a thread; PYNQ
    then keeps the empty device list it started, and every later allocation in the process fails
    with "No Devices Found" (pynq/pl_server/device.py, xrt_device.py). So the probe gets an event
    loop to look at, one for the process (PYNQ only keeps it for XRT command completion, which VTA
    does not use), and the thread is left without a loop, as it was.
    """
    global _PYNQ_LOOP
    lend = threading.current_thread() is not threading.main_thread()
    if lend:
        try:
            asyncio.get_event_loop_policy().get_event_loop()
            lend = False  # the thread has a loop of its own
        except RuntimeError:
            _PYNQ_LOOP = _PYNQ_LOOP or asyncio.new_event_loop()
            asyncio.set_event_loop(_PYNQ_LOOP)
    try:
        _ = pynq.Device.active_device  # type: ignore[attr-defined]
    except (RuntimeError, OSError) as e:
        raise DeviceError(f"pynq found no device ({e}): is XILINX_XRT set? PYNQ 3.x images set it in "
                          "/etc/profile.d/xrt_setup.sh, which login shells read and sudo skips") from e
    finally:
        if lend:
            asyncio.set_event_loop(None)


class PynqAllocator:
    """Cacheable CMA buffers from ``pynq.allocate`` (the board's Xilinx driver stack).

    PYNQ needs the bitstream loaded before it allocates, and cannot load one while buffers are
    allocated, so re-programming goes through :meth:`reprogram`: it saves and frees every live
    buffer, programs, then allocates each again. Streams hold physical addresses, so a buffer
    keeps working (content restored) only if it gets its old address back; otherwise it is
    lost, and every later use raises an error saying so.
    """

    def __init__(self, coherent: bool = True) -> None:
        try:
            import pynq
        except ImportError as e:
            raise DeviceError("board buffers need the pynq library: run this on a Pynq board, in the environment "
                              "pynq is installed in, or install it with `pip install \".[board]\"` from the pynq-vta "
                              "checkout") from e
        self._pynq = pynq
        _find_pynq_device(pynq)
        self.coherent = coherent
        self.cache = CacheStats()
        self._live: dict[object, DmaBuffer] = {}  # token -> buffer, in allocation order

    def _allocate(self, nbytes: int) -> np.ndarray:
        try:
            return self._pynq.allocate(shape=(nbytes,), dtype=np.uint8, cacheable=True)
        except (RuntimeError, MemoryError, OSError, ValueError) as e:
            raise DeviceError(f"pynq.allocate could not provide {nbytes} contiguous bytes: {e}") from e

    def _wrap(self, pbuf: np.ndarray, into: DmaBuffer | None = None) -> DmaBuffer:
        token = object()

        def release() -> None:
            del self._live[token]
            pbuf.freebuffer()

        def maintain(kind: str, offset: int, size: int) -> None:
            part = pbuf[offset:offset + size]  # a PynqBuffer slice maintains only its own range
            part.flush() if kind == "flushed" else part.invalidate()
            self.cache.count(kind, size)

        buf = DmaBuffer(pbuf, pbuf.physical_address, release, None if self.coherent else maintain)
        if into is not None:
            into._adopt(buf)
            buf = into
        self._live[token] = buf
        return buf

    def alloc(self, nbytes: int) -> DmaBuffer:
        """A zero-filled buffer: CMA memory comes back as its last user left it."""
        pbuf = self._allocate(_check_size(nbytes))
        pbuf[:] = 0
        buf = self._wrap(pbuf)
        buf.flush()
        return buf

    @property
    def live(self) -> tuple[DmaBuffer, ...]:
        return tuple(self._live.values())

    def reprogram(self, program: Callable[[], str], why: str) -> tuple[str, list[DmaBuffer]]:
        """Run ``program`` with no buffer allocated, then restore every buffer; (its result, the lost buffers).

        If ``program`` raises, every buffer is lost (there may be no bitstream to allocate under).
        """
        saved = sorted(self._live.values(), key=lambda b: b.phys_addr)
        contents = []
        for buf in saved:
            buf.invalidate()
            contents.append(np.array(buf.array, copy=True))
            buf.free()
            buf._lose(f"DMA buffer at 0x{buf.phys_addr:x} ({buf.nbytes} bytes) is being restored after the FPGA "
                      "was re-programmed")
        try:
            done = program()
        except BaseException as e:
            for buf in saved:
                buf._lose(f"DMA buffer at 0x{buf.phys_addr:x} ({buf.nbytes} bytes) was lost: the FPGA had to be "
                          f"re-programmed ({why}) and that failed ({e}); re-program the board and allocate again")
            raise
        return done, self._restore(saved, contents, why)

    def _restore(self, saved: list[DmaBuffer], contents: list[np.ndarray], why: str) -> list[DmaBuffer]:
        """Allocate each buffer again at its old address (holding lower blocks as fillers meanwhile)."""
        fillers: list[np.ndarray] = []
        lost: list[DmaBuffer] = []
        try:
            for buf, data in zip(saved, contents):
                pbuf = self._realloc_at(buf.phys_addr, buf.nbytes, fillers)
                if pbuf is None:
                    lost.append(buf)
                    buf._lose(f"DMA buffer at 0x{buf.phys_addr:x} ({buf.nbytes} bytes) was lost when the FPGA was "
                              f"re-programmed ({why}): pynq.allocate could not give its physical address back, and "
                              "instruction streams hold physical addresses; free it and allocate a new one (a "
                              "Runtime that lost its own buffers must be closed and opened again)")
                    continue
                pbuf[:] = data
                self._wrap(pbuf, into=buf).flush()
        finally:
            for filler in fillers:
                filler.freebuffer()
        return lost

    def _realloc_at(self, phys: int, nbytes: int, fillers: list[np.ndarray]) -> np.ndarray | None:
        """Allocate until pynq returns ``phys``; blocks it returns below are kept taken (first-fit skips them)."""
        footprint = -(-nbytes // PAGE_BYTES) * PAGE_BYTES
        for _ in range(_MAX_FILLERS):
            try:
                pbuf = self._allocate(nbytes)
                got = pbuf.physical_address
                if got == phys:
                    return pbuf
                if got > phys:
                    pbuf.freebuffer()
                    return None
                if got + footprint > phys:  # overlaps the old address: take only the gap below it
                    pbuf.freebuffer()
                    pbuf = self._allocate(phys - got)
            except DeviceError:
                return None
            fillers.append(pbuf)
        return None

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
