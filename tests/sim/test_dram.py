import numpy as np
import pytest

from vta.errors import BackendError
from vta.sim.dram import Dram


def test_reference_placement_and_reuse():
    d = Dram()
    a, b = d.alloc(100), d.alloc(5000)
    assert (a.phys_addr, b.phys_addr) == (0x1000, 0x2000)  # (slot + 1) << 12, b takes 2 pages
    d.free(a)
    c = d.alloc(4096)
    assert c.phys_addr == 0x1000  # the freed 1-page block is reused whole
    e = d.alloc(10)
    assert e.phys_addr == 0x4000


def test_find_requires_one_live_block():
    d = Dram()
    a = d.alloc(8192)
    assert d.find(a.phys_addr + 100, 50)[1] == 100
    assert d.find(a.phys_addr + 8190, 4) is None
    assert d.find(0, 4) is None
    d.free(a)
    assert d.find(a.phys_addr, 1) is None


def test_views_and_errors():
    d = Dram()
    a = d.alloc(64)
    a.view(np.int32)[:] = np.arange(16)
    assert a.view(np.int32, (4, 4))[3, 3] == 15
    with pytest.raises(BackendError, match="positive integer, got 0"):
        d.alloc(0)
    with pytest.raises(BackendError, match="already freed"):
        d.free(a) or d.free(a)
    live = d.alloc(10)
    with pytest.raises(BackendError, match="overlaps a live block"):
        d.alloc_at(live.phys_addr, 10)
    with pytest.raises(BackendError, match="page-aligned"):
        d.alloc_at(0x1234, 10)


def test_adopt_tracks_external_memory():
    d = Dram()
    mem = np.zeros(4096, dtype=np.uint8)
    buf = d.adopt(0x10000000, mem)
    mem[5] = 7
    assert buf.data[5] == 7 and d.find(0x10000005, 1)[0] is buf
    gen = d.generation
    d.alloc(1)
    assert d.generation == gen + 1


def test_alloc_skips_blocks_placed_at_fixed_addresses():
    d = Dram()
    fixed = d.alloc_at(0x1000, 3 * 4096)
    a = d.alloc(4096)
    assert a.phys_addr == 0x4000 and d.find(0x1000, 1)[0] is fixed
    d.free(a)
    d.alloc_at(0x4000, 4096)
    b = d.alloc(4096)  # the freed slot is now covered: not reused
    assert b.phys_addr == 0x5000


def test_a_window_with_its_own_storage():
    backing = np.full(3 * 4096, 0xAB, np.uint8)
    d = Dram(0x10000, 0x13000, storage=lambda phys, n: backing[phys - 0x10000:phys - 0x10000 + n])
    a = d.alloc(5000)
    assert a.phys_addr == 0x10000 and np.shares_memory(a.data, backing) and not a.data.any()  # zero-filled
    with pytest.raises(BackendError, match=r"^DRAM exhausted: cannot place 8192 more bytes between 0x10000 and "
                       r"0x13000$"):
        d.alloc(8192)
    with pytest.raises(BackendError, match=r"must be page-aligned, start above page 0"):
        Dram(0, 0x1000)
