"""Cache maintenance on the board path: only the bytes each copy touches, none on the coherent ACP port."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmarks.runtime_overhead import H, W, build_conv_tile
from tests.driver.fake_pynq import FakePynq
from vta.driver.buffers import CACHE_LINE
from vta.errors import BackendError
from vta.isa import MEM_UOP, OP_LOAD, DecodedStream
from vta.runtime import Runtime


def _lines(nbytes: int) -> int:
    return -(-nbytes // CACHE_LINE) * CACHE_LINE


@pytest.fixture
def tile_runtime(board):
    """A conv tile's runtime on the emulated board; ``make(coherent)`` returns (runtime, buffers)."""
    made = []

    def make(coherent: bool):
        rt = Runtime("pynq", emulator=board, coherent=coherent)
        made.append(rt)
        rng = np.random.default_rng(0)
        x, k, y = rt.alloc(H * W * 16), rt.alloc(9 * 256), rt.alloc(H * W * 16)
        x.copy_from(rng.integers(-128, 128, (H, W, 16), dtype=np.int8))
        k.copy_from(rng.integers(-128, 128, (9, 16, 16), dtype=np.int8))
        build_conv_tile(rt, (x, k, y))
        rt.queue.synchronize()  # first cycle: micro-op kernels recorded
        return rt, (x, k, y)

    yield make
    for rt in made:
        rt.close()


def _cycle(rt, bufs) -> tuple[int, int, bytes]:
    """(bytes flushed, bytes invalidated, stream) of one synchronize of the tile plus reading its output."""
    stats = rt.backend.device.cache_stats
    before = (stats.flushed, stats.invalidated)
    build_conv_tile(rt, bufs)
    rt.queue.synchronize()
    bufs[2].copy_to()
    stream = rt._insn_buf.view()[:16 * rt._program_runs[-1].insn_count].tobytes()
    return stats.flushed - before[0], stats.invalidated - before[1], stream


def test_a_non_coherent_board_maintains_only_the_copied_bytes(tile_runtime):
    rt, bufs = tile_runtime(coherent=False)
    flushed, invalidated, stream = _cycle(rt, bufs)
    s = DecodedStream(stream, rt.env)
    uop_loads = (s.opcode == OP_LOAD) & (s.mem["memory_type"] == MEM_UOP)
    uop_bytes = int(s.mem["x_size"][uop_loads].sum()) * rt.env.UOP_ELEM_BYTES
    assert flushed == _lines(len(stream)) + _lines(uop_bytes)  # the stream and the micro-ops, not whole buffers
    assert invalidated == _lines(bufs[2].nbytes) and flushed < 1024


def test_the_coherent_acp_port_needs_no_maintenance(tile_runtime):
    rt, bufs = tile_runtime(coherent=True)
    assert _cycle(rt, bufs)[:2] == (0, 0)


def test_ranges_are_rounded_to_cache_lines_and_checked(device):
    device.allocator.coherent = False
    buf = device.alloc(4096)
    stats = device.cache_stats
    before = stats.flushed
    buf.flush(30, 4)  # bytes 30..33 touch lines 0 and 1
    assert stats.flushed - before == 2 * CACHE_LINE
    with pytest.raises(BackendError, match=r"^cache maintenance of 8 bytes at offset 4092 is outside the 4096-byte"):
        buf.invalidate(4092, 8)
    buf.free()


def test_pynq_buffers_are_maintained_by_slices(monkeypatch):
    fake = FakePynq(coherent=False)
    fake.loaded = "vta.bit"
    monkeypatch.setitem(sys.modules, "pynq", fake)
    from vta.driver.buffers import PynqAllocator

    buf = PynqAllocator(coherent=False).alloc(4096)
    phys = buf.phys_addr
    assert fake.calls[-1] == ("flush", phys, 4096)  # the zero fill reaches DRAM
    buf.flush(100, 50)
    buf.invalidate(4001, 10)
    assert fake.calls[-2:] == [("flush", phys + 96, 64), ("invalidate", phys + 4000, 32)]
    calls = len(fake.calls)
    acp = PynqAllocator()  # coherent: the ACP port snoops the caches, nothing to do
    acp.alloc(4096).flush()
    assert [c[0] for c in fake.calls[calls:]] == ["allocate"] and acp.cache.flushed == 0


def test_default_runtime_buffers_leave_the_cma_pool_to_data(board):
    with Runtime("pynq", emulator=board) as rt:
        own = sum(b.nbytes for b in rt.buffers)  # the instruction and micro-op buffers
    assert own == 2 << 20 and own * 64 == 128 << 20  # 1/64 of PYNQ's 128 MiB CMA pool (it was half)
