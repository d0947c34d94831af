"""Device DRAM: a 32-bit physical address space with a page-granular allocator.

Allocation follows the reference ``virtual_memory.cc`` (spec §3.10): a block of n pages takes
page-table slots [s, s+n) and gets physical address ``base + (s << 12)`` (``base`` is one page
in the simulator, so ``(s + 1) << 12`` as in the reference); freed blocks are reused whole by the
smallest free block that is large enough. Each block owns its bytes as a numpy array, so a DMA
that strays outside every live block is caught instead of touching memory.

This is the project's one page allocator: the simulator uses it over private arrays, and the
emulated board's DMA pool (:class:`vta.driver.buffers.FileAllocator`) over a window of the
emulator's file, by giving ``storage``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vta.errors import BackendError

__all__ = ["PAGE_BYTES", "Dram", "DramBuffer"]

PAGE_BYTES = 4096
ADDRESS_LIMIT = 1 << 32


@dataclass(eq=False)
class DramBuffer:
    """One physically contiguous block: physical address, size and its bytes."""

    phys_addr: int
    nbytes: int
    data: np.ndarray = field(repr=False)
    alive: bool = True

    def view(self, dtype: np.dtype | str = np.uint8, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A numpy view of the buffer's bytes (little-endian dtypes match the device)."""
        arr = self.data.view(np.dtype(dtype))
        return arr if shape is None else arr.reshape(shape)

    @property
    def end(self) -> int:
        return self.phys_addr + self.nbytes


class Dram:
    """Live blocks of the simulated DRAM, found by physical address."""

    def __init__(self, base: int = PAGE_BYTES, limit: int = ADDRESS_LIMIT,
                 storage: Callable[[int, int], np.ndarray] | None = None) -> None:
        """Allocate pages in [base, limit); ``storage(phys, nbytes)`` gives a block's bytes (default: new arrays)."""
        if base <= 0 or base % PAGE_BYTES or limit % PAGE_BYTES or not base < limit <= ADDRESS_LIMIT:
            raise BackendError(f"DRAM range 0x{base:x}..0x{limit:x} must be page-aligned, start above page 0 and "
                               "end at or below 4 GiB")
        self.base, self.limit, self._storage = base, limit, storage
        self._starts: list[int] = []
        self._blocks: list[DramBuffer] = []
        self._reserved: dict[int, int] = {}  # phys addr -> page-rounded bytes the block occupies
        self._next_slot = 0
        self._free: dict[int, list[int]] = {}  # page count -> free slot starts
        self._owned: dict[int, int] = {}  # phys addr -> pages, for blocks from alloc()
        self.generation = 0  # bumped by every alloc/free, so cached address lookups know they are stale

    # --- allocation -----------------------------------------------------------------------
    def alloc(self, nbytes: int) -> DramBuffer:
        """Allocate ``nbytes`` (rounded up to pages) with the reference's placement rule."""
        if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool) or nbytes <= 0:
            raise BackendError(f"DRAM allocation size must be a positive integer, got {nbytes!r}")
        pages = -(-int(nbytes) // PAGE_BYTES)
        reused = self._reuse(pages)
        if reused is not None:
            slot, pages = reused
        else:
            slot = self._next_slot
            while (hit := self._overlap(self._addr(slot), pages * PAGE_BYTES)) is not None:
                slot = (hit.phys_addr + self._reserved[hit.phys_addr] - self.base) // PAGE_BYTES  # skip fixed blocks
            if self._addr(slot) + pages * PAGE_BYTES > self.limit:
                raise BackendError(f"DRAM exhausted: cannot place {nbytes} more bytes between 0x{self.base:x} and "
                                   f"0x{self.limit:x}")
            self._next_slot = slot + pages
        phys = self._addr(slot)
        buf = self._insert(phys, pages * PAGE_BYTES, int(nbytes))
        self._owned[phys] = pages
        return buf

    def _reuse(self, pages: int) -> tuple[int, int] | None:
        """(slot, pages) of the smallest free block that fits and that nothing has since been placed over."""
        for n in sorted(k for k, slots in self._free.items() if k >= pages and slots):
            while self._free[n]:
                slot = self._free[n].pop()
                if self._overlap(self._addr(slot), n * PAGE_BYTES) is None:
                    return slot, n
        return None

    def _addr(self, slot: int) -> int:
        return self.base + slot * PAGE_BYTES

    def _overlap(self, phys: int, size: int) -> DramBuffer | None:
        i = bisect.bisect_left(self._starts, phys + size) - 1
        if i >= 0 and self._starts[i] + self._reserved[self._starts[i]] > phys:
            return self._blocks[i]
        return None

    def alloc_at(self, phys_addr: int, nbytes: int, data: np.ndarray | None = None) -> DramBuffer:
        """Place a block at a fixed page-aligned address (golden vectors cannot be relocated)."""
        if phys_addr % PAGE_BYTES or phys_addr <= 0 or nbytes <= 0 or phys_addr + nbytes > ADDRESS_LIMIT:
            raise BackendError(
                f"cannot place {nbytes} bytes at 0x{phys_addr:x}: need a page-aligned address >= 0x1000 "
                "with the block below 4 GiB"
            )
        size = -(-nbytes // PAGE_BYTES) * PAGE_BYTES
        if self._overlap(phys_addr, size) is not None:
            raise BackendError(f"cannot place {nbytes} bytes at 0x{phys_addr:x}: overlaps a live block")
        return self._insert(phys_addr, size, nbytes, data)

    def adopt(self, phys_addr: int, data: np.ndarray) -> DramBuffer:
        """Track memory owned elsewhere (a board's DMA buffer) at its physical address, without copying."""
        if data.dtype != np.uint8 or data.ndim != 1:
            raise BackendError(f"adopted DRAM must be a 1-D uint8 array, got {data.dtype} with shape {data.shape}")
        return self.alloc_at(phys_addr, len(data), data)

    def _insert(self, phys: int, size: int, nbytes: int, data: np.ndarray | None = None) -> DramBuffer:
        if data is None and self._storage is None:
            data = np.zeros(nbytes, dtype=np.uint8)
        elif data is None:
            data = self._storage(phys, nbytes)
            data[:] = 0  # the storage may hold an earlier block's bytes
        buf = DramBuffer(phys, nbytes, data)
        i = bisect.bisect_right(self._starts, phys)
        self._starts.insert(i, phys)
        self._blocks.insert(i, buf)
        self._reserved[phys] = size
        self.generation += 1
        return buf

    def free(self, buf: DramBuffer) -> None:
        if not buf.alive:
            raise BackendError(f"DRAM block at 0x{buf.phys_addr:x} was already freed")
        i = self._starts.index(buf.phys_addr)
        del self._starts[i], self._blocks[i], self._reserved[buf.phys_addr]
        buf.alive = False
        self.generation += 1
        pages = self._owned.pop(buf.phys_addr, None)
        if pages is not None:
            self._free.setdefault(pages, []).append((buf.phys_addr - self.base) // PAGE_BYTES)

    # --- lookup ---------------------------------------------------------------------------
    def find(self, phys_addr: int, nbytes: int) -> tuple[DramBuffer, int] | None:
        """The live block holding all of [phys_addr, phys_addr + nbytes), and the offset in it."""
        i = bisect.bisect_right(self._starts, phys_addr) - 1
        if i < 0:
            return None
        buf = self._blocks[i]
        offset = phys_addr - buf.phys_addr
        if offset + nbytes > buf.nbytes:
            return None
        return buf, offset

    @property
    def blocks(self) -> tuple[DramBuffer, ...]:
        return tuple(self._blocks)
