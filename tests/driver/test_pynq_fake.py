"""The board-only code against a strict fake of ``pynq``: allocator, programming order, recovery.

The fake (tests/driver/fake_pynq.py) raises where PYNQ 3.x does: allocating before a bitstream
is loaded, loading one under live buffers, using a freed buffer. Backed by an emulator file's
DRAM and the emulated board's registers, it runs the whole board path: Runtime("pynq") ->
BoardBackend -> BoardDevice -> PynqAllocator + vta.bitstream.program -> pynq.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest

from tests.bitstream.synth import make_bit, record_for
from tests.driver.fake_pynq import POISON, STALE, FakePynq, emulator_memory
from tests.runtime.programs import matmul_tile
from vta.config import load_config
from vta.driver.buffers import PynqAllocator
from vta.driver.device import BoardDevice
from vta.errors import BackendError, DeviceError, DeviceTimeout, DramOutOfBoundsError
from vta.isa import MEM_INP, MEM_OUT, MEM_WGT
from vta.runtime import Runtime, UopKernel
from vta.runtime.backends.board import BoardBackend

POOL_BASE, POOL_BYTES = 0x10000000, 16 << 20


@pytest.fixture
def pynq_env():
    return load_config(target="pynq")


@pytest.fixture
def bit(tmp_path, pynq_env):
    """A synthetic bitstream for the Pynq configuration and the record it verifies against."""
    blob = make_bit()
    path = tmp_path / f"{pynq_env.BITSTREAM}.bit"
    path.write_bytes(blob)
    return path, record_for(blob, pynq_env)


@pytest.fixture
def fake(monkeypatch):
    module = FakePynq()
    monkeypatch.setitem(sys.modules, "pynq", module)
    return module


@pytest.fixture
def loaded(fake, tmp_path):
    """The fake with some bitstream already on the FPGA (as after ``vta program``)."""
    path = tmp_path / "earlier.bit"
    path.write_bytes(b"bit")
    fake.Bitstream(str(path)).download()
    return fake


@pytest.fixture
def mem_file(tmp_path):
    """A sparse file standing in for /dev/mem (the register windows of a device that never runs)."""
    path = tmp_path / "mem"
    with open(path, "wb") as f:
        f.truncate(0x44000000)
    return path


def _open(pynq_env, bit, mem_path, tmp_path, **options) -> BoardDevice:
    path, record = bit
    return BoardDevice.open_board(pynq_env, bitstream=path, mem_path=str(mem_path), lock_path=tmp_path / "lock",
                                  expected=record, **options)


# --- the fake is as strict as PYNQ ----------------------------------------------------------
def test_fake_refuses_what_pynq_refuses(fake, tmp_path):
    with pytest.raises(RuntimeError, match=r"^No bitstream loaded"):
        fake.allocate((16,), np.uint8)
    (tmp_path / "a.bit").write_bytes(b"x")
    fake.Bitstream(str(tmp_path / "a.bit")).download()
    buf = fake.allocate((4096,), np.uint8)
    assert buf.physical_address == fake.base and (buf == STALE).all()
    with pytest.raises(RuntimeError, match=r"^cannot load .*a\.bit: 1 buffer\(s\) are still allocated"):
        fake.Bitstream(str(tmp_path / "a.bit")).download()
    buf.freebuffer()
    assert (buf == POISON).all()
    for use in (buf.flush, buf.invalidate, buf.freebuffer):
        with pytest.raises(RuntimeError, match=r"of a freed buffer$"):
            use()


# --- PynqAllocator --------------------------------------------------------------------------
def test_allocator_zero_fills_what_pynq_hands_out_stale(loaded):
    alloc = PynqAllocator()
    buf = alloc.alloc(5000)
    assert buf.nbytes == 5000 and buf.phys_addr == loaded.live[buf.phys_addr].physical_address
    assert not buf.array.any()
    off = buf.phys_addr - loaded.base
    assert not loaded.memory[off:off + 5000].any()  # zeros reached DRAM, not only the CPU's cache
    buf.free()
    with pytest.raises(BackendError, match=rf"^DMA buffer at 0x{buf.phys_addr:x} was already freed$"):
        _ = buf.array
    assert ("free", buf.phys_addr) in loaded.calls


def test_allocator_turns_pynq_failures_into_device_errors(fake, monkeypatch):
    alloc = PynqAllocator()
    with pytest.raises(DeviceError, match=r"^pynq\.allocate could not provide 4096 contiguous bytes: No bitstream "
                       r"loaded"):
        alloc.alloc(4096)
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(DeviceError, match=r"^board buffers need the pynq library: run this on a Pynq board, in the "
                       r"environment pynq is installed in, or install it with `pip install \"\.\[board\]\"` from "
                       r"the pynq-vta checkout$"):
        PynqAllocator()


# --- programming order ----------------------------------------------------------------------
def test_open_board_programs_before_anything_is_allocated(fake, pynq_env, bit, mem_file, tmp_path):
    backend = BoardBackend(pynq_env, bitstream=bit[0], expected=bit[1], mem_path=str(mem_file),
                           lock_path=tmp_path / "lock")
    rt = Runtime(backend, env=pynq_env, insn_capacity=64, uop_capacity=64)
    try:
        kinds = [c[0] for c in fake.calls]
        assert kinds[0] == "download" and kinds.count("download") == 1 and "allocate" in kinds
        assert backend.device.programmed == f"FPGA programmed with {bit[0]}"
        assert all(not b.view().any() for b in rt.buffers)
    finally:
        rt.close()
    assert fake.live == {}


def test_open_board_can_keep_a_loaded_bitstream(loaded, pynq_env, bit, mem_file, tmp_path):
    with _open(pynq_env, bit, mem_file, tmp_path, program=False) as dev:
        dev.alloc(4096)
        assert dev.programmed is None and [c[0] for c in loaded.calls] == ["download", "allocate"]


def test_open_board_failure_releases_the_lock(fake, pynq_env, bit, mem_file, tmp_path):
    fake.failure = OSError(5, "Input/output error")
    with pytest.raises(Exception, match=r"pynq could not program .* OSError: \[Errno 5\] Input/output error$"):
        _open(pynq_env, bit, mem_file, tmp_path)
    with _open(pynq_env, bit, mem_file, tmp_path, program=False):
        pass  # the lock was released


# --- recovery with live buffers -------------------------------------------------------------
def test_recovery_frees_reprograms_and_restores_buffers(fake, pynq_env, bit, mem_file, tmp_path, caplog):
    with _open(pynq_env, bit, mem_file, tmp_path) as dev:
        a, b, c = dev.alloc(4096), dev.alloc(3 * 4096), dev.alloc(8192)
        for i, buf in enumerate((a, b, c)):
            buf.array[:] = i + 1
            buf.flush()
        b.free()  # a hole below c that a first-fit allocator would fill with c
        hooks = []
        dev.on_reset(lambda: hooks.append(1))
        with caplog.at_level(logging.INFO, logger="vta"):
            done = dev.recover("test")
        assert done == f"FPGA programmed with {bit[0]}" and hooks == [1]
        assert (a.array == 1).all() and (c.array == 3).all()
        assert sorted(fake.live) == [a.phys_addr, c.phys_addr]
        assert [c[0] for c in fake.calls].count("download") == 2
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("recovering VTA device") and m.endswith(": test") for m in messages)
        assert any(m.startswith("programming the FPGA with") for m in messages)


def test_buffer_that_cannot_get_its_address_back_is_lost(fake, pynq_env, bit, mem_file, tmp_path):
    with _open(pynq_env, bit, mem_file, tmp_path) as dev:
        a, b = dev.alloc(4096), dev.alloc(4096)
        a.array[:] = 7
        fake.on_download = lambda: fake.reserve(b.phys_addr, 4096)  # another process takes b's pages
        done = dev.recover("timeout")
        assert done.endswith(f"; 1 buffer(s) could not get their physical address back and were lost: "
                             f"0x{b.phys_addr:x}")
        assert (a.array == 7).all()
        lost = (rf"^DMA buffer at 0x{b.phys_addr:x} \(4096 bytes\) was lost when the FPGA was re-programmed "
                r"\(timeout\): pynq\.allocate could not give its physical address back")
        for use in (lambda: b.array, b.flush, b.invalidate):
            with pytest.raises(BackendError, match=lost):
                use()
        b.free()  # forgetting a lost buffer is allowed, and only once
        with pytest.raises(BackendError, match=r"was already freed$"):
            b.free()
        assert list(fake.live) == [a.phys_addr]


def test_failed_reprogramming_loses_buffers_and_says_so(fake, pynq_env, bit, mem_file, tmp_path):
    with _open(pynq_env, bit, mem_file, tmp_path) as dev:
        a = dev.alloc(4096)
        fake.failure = OSError(16, "Device or resource busy")
        with pytest.raises(DeviceError, match=r"^timeout\. Recovery failed: pynq could not program .*: OSError: "
                           r"\[Errno 16\] Device or resource busy; re-program the board \(`vta program`\) before "
                           r"the next run$"):
            dev.recover("timeout")
        with pytest.raises(BackendError, match=r"was lost: the FPGA had to be re-programmed \(timeout\) and that "
                           r"failed \(.*\); re-program the board and allocate again$"):
            _ = a.array
        assert fake.live == {}


# --- the whole board path on the emulated board ----------------------------------------------
@pytest.fixture
def stack(board, pynq_env, bit, tmp_path, monkeypatch):
    """Runtime -> BoardBackend -> fake pynq over the emulator's DRAM and registers; programming resets it."""

    def make(coherent: bool) -> tuple[Runtime, FakePynq]:
        module = FakePynq(emulator_memory(board.path, POOL_BASE, POOL_BYTES), POOL_BASE, coherent=coherent)
        module.on_download = board.reset
        monkeypatch.setitem(sys.modules, "pynq", module)
        backend = BoardBackend(pynq_env, bitstream=bit[0], expected=bit[1], mem_path=str(board.path),
                               lock_path=tmp_path / "lock", timeout_s=5.0, coherent=coherent)
        rt = Runtime(backend, env=pynq_env, insn_capacity=256, uop_capacity=256)
        made.append(rt)
        return rt, module

    made: list[Runtime] = []
    assert tuple(board.bases) == pynq_env.IP_BASES
    yield make
    for rt in made:
        rt.close()


def _tile(rt: Runtime, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One 16x16 GEMM tile whose result is read with copy_to (which invalidates), for non-coherent memory."""
    a_buf, w_buf, c_buf = rt.alloc(256), rt.alloc(256), rt.alloc(256)
    a_buf.copy_from(a)
    w_buf.copy_from(w)
    q = rt.queue
    q.load_2d(a_buf, 0, 16, 1, 16, 0, 0, 0, 0, 0, MEM_INP)
    q.load_2d(w_buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_WGT)
    q.dep_push(1, 2)
    q.dep_pop(1, 2)
    q.push_gemm("fake-reset", lambda: UopKernel.gemm([(16, 1, 0, 0)], [(0, 0, 0)], reset=True, env=rt.env))
    q.push_gemm("fake-mac", lambda: UopKernel.gemm([(16, 1, 1, 0)], [(0, 0, 0)], env=rt.env))
    q.dep_push(2, 3)
    q.dep_pop(2, 3)
    q.store_2d(0, MEM_OUT, c_buf, 0, 16, 1, 16)
    q.synchronize()
    return c_buf.copy_to(np.empty((16, 16), np.int8))


def test_runtime_runs_and_recovers_on_the_fake_board(stack, board):
    rt, _ = stack(coherent=True)
    rng = np.random.default_rng(10)
    got, want = matmul_tile(rt, rng)
    assert np.array_equal(got, want)
    kept = rt.alloc(4096)
    kept.copy_from(np.arange(4096, dtype=np.uint8))
    board.inject("hang")
    with pytest.raises(DeviceTimeout, match=r"Recovered: FPGA programmed with .*; the next run starts on a clean "
                       r"device$"):
        matmul_tile(rt, rng)
    assert np.array_equal(kept.copy_to(), np.arange(4096, dtype=np.uint8))
    got, want = matmul_tile(rt, rng)
    assert np.array_equal(got, want)


def test_runtime_buffer_lost_in_recovery_is_refused_and_can_be_freed(stack):
    rt, fake = stack(coherent=True)
    rng = np.random.default_rng(12)
    lost = rt.alloc(4096)
    fake.on_download = lambda: fake.reserve(lost.phys_addr, 4096)
    rt.backend.reset()
    with pytest.raises(BackendError, match=rf"^DMA buffer at 0x{lost.phys_addr:x} \(4096 bytes\) was lost when the "
                       r"FPGA was re-programmed \(reset requested\)"):
        lost.copy_to()
    with pytest.raises(DramOutOfBoundsError, match=r"^dram_oob: "):
        rt.queue.load_2d(lost, 0, 16, 1, 16, 0, 0, 0, 0, 0, MEM_INP)
        rt.queue.synchronize()
    rt.queue.reset()
    rt.free(lost)
    got, want = matmul_tile(rt, rng)  # the runtime's own buffers kept their addresses
    assert np.array_equal(got, want)


def test_non_coherent_buffers_and_recovery_keep_the_verifier_on_live_memory(stack, board):
    rt, fake = stack(coherent=False)
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    w = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    want = (a.astype(np.int32) @ w.astype(np.int32).T).astype(np.int8)
    assert np.array_equal(_tile(rt, a, w), want)
    rt.backend.reset()  # a re-programming: every buffer is freed, re-allocated and refilled
    assert [c[0] for c in fake.calls].count("download") == 2
    assert np.array_equal(_tile(rt, a, w), want)


def test_device_lock_blocks_vta_program_while_the_runtime_runs(stack, bit, tmp_path):
    from vta.bitstream.program import program
    from vta.errors import DeviceBusy

    rt, fake = stack(coherent=True)
    downloads = len(fake.downloads)
    with pytest.raises(DeviceBusy, match=rf"^the VTA device is busy: owned by pid {os.getpid()} \(.+\) \(lock "):
        program(bit[0], rt.env, expected=bit[1], lock=tmp_path / "lock")
    assert len(fake.downloads) == downloads
