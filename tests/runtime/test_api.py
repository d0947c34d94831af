"""Runtime API edges: registry, per-thread runtime, device buffers, kernel recording errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vta.errors import BackendError, EncodingError, RaceError, SramOutOfBoundsError, UnknownOpcodeError
from vta.isa import ALU_ADD, MEM_INP, MEM_OUT
from vta.runtime import Runtime, UopKernel, backend_for_target, create_backend, get_runtime


def test_registry_names(env):
    with pytest.raises(BackendError, match=r"^unknown runtime backend 'tpu'; valid names: sim, pynq, rpc$"):
        create_backend("tpu", env)
    with pytest.raises(BackendError, match=r"^rpc backend: give url='tcp\+tls://HOST:PORT' or 'ssh://USER@HOST'"):
        create_backend("rpc", env)
    assert backend_for_target("sim") == "sim" and backend_for_target("ultra96") == "pynq"
    with pytest.raises(BackendError, match=r"^no runtime backend for TARGET='de10nano'; targets with a backend: sim"):
        backend_for_target("de10nano")


def test_get_runtime_is_per_thread():
    rt = get_runtime()
    assert get_runtime() is rt and rt.backend.name == "sim"
    other = []
    t = threading.Thread(target=lambda: other.append(get_runtime()))
    t.start()
    t.join()
    assert other[0] is not rt
    other[0].close()
    rt.close()
    assert get_runtime() is not rt
    get_runtime().close()


def test_device_buffer(rt):
    buf = rt.alloc(100)
    buf.copy_from(np.arange(25, dtype=np.int32))
    assert buf.view(np.int32, (5, 5))[1, 0] == 5
    back = buf.copy_to(np.zeros(25, np.int32))
    assert back[24] == 24
    with pytest.raises(BackendError, match=r"^copy_from: expected 100 bytes \(the size of the device buffer at "
                                           r"0x[0-9a-f]+\), got 104 \(a \(26,\) int32 array\)$"):
        buf.copy_from(np.zeros(26, np.int32))
    rt.free(buf)
    with pytest.raises(BackendError, match=r"^view: device buffer at 0x[0-9a-f]+ \(100 bytes\) was freed$"):
        buf.view()
    with pytest.raises(BackendError, match=r"^load_2d: DeviceBuffer\(phys_addr=0x[0-9a-f]+, nbytes=100, freed\) "
                                           r"was freed$"):
        rt.queue.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, 2)
    with pytest.raises(BackendError, match=r"^Runtime insn_capacity must be an integer >= 8, got 4$"):
        Runtime("sim", insn_capacity=4)


def test_kernel_recording_errors(rt):
    with pytest.raises(BackendError, match=r"^GEMM kernel has 3 loops; the instruction has two loop levels$"):
        UopKernel.gemm([(1, 0, 0, 0)] * 3, [(0, 0, 0)])
    with pytest.raises(RaceError, match=r"^race: compute module: ALU kernel micro-ops 0 and 2 both write accumulator "
                                        r"entry 4"):
        UopKernel.alu([], [(4, 0), (5, 0), (4, 1)])
    with pytest.raises(SramOutOfBoundsError, match=r"^sram_oob: compute module: a kernel of 8193 micro-ops does not "
                                                   r"fit the 8192-entry micro-op SRAM$"):
        UopKernel.gemm([], [(i % 3, 0, 0) for i in range(8193)])
    with pytest.raises(UnknownOpcodeError, match=r"^unknown_opcode: compute module: ALU kernel opcode 7 is undefined"):
        UopKernel.alu([], [(0, 0)], opcode=7)
    with pytest.raises(EncodingError, match=r"^ALU\.imm=40000 does not fit its 16-bit signed field"):
        UopKernel.alu([], [(0, 0)], use_imm=True, imm=40000)
    with pytest.raises(EncodingError, match=r"^UOP\[0\]\.dst_idx=2048 does not fit its 11-bit unsigned field"):
        UopKernel.gemm([], [(2048, 0, 0)])
    with pytest.raises(BackendError, match=r"^push_gemm\('k'\): build\(\) returned an ALU UopKernel; expected a GEMM"):
        rt.queue.push_gemm("k", lambda: UopKernel.alu([], [(0, 0)]))
    with pytest.raises(BackendError, match=r"^debug flags 8 are not a combination of DEBUG_DUMP_INSN \(2\)"):
        rt.queue.set_debug_mode(8)


@pytest.mark.parametrize("arr,got", [
    ([0] * 100, r"^copy_from: expected a numpy integer array or bytes, got list$"),
    (np.zeros(25, np.float32), r"^copy_from: expected an integer array in machine byte order \(int8, uint8, int32, "
                               r"\.\.\.\) or bytes, got a float32 array$"),
    (np.zeros(12, np.float64), r"^copy_from: expected an integer array .* got a float64 array$"),
    (np.zeros(25, ">i4"), r"^copy_from: expected an integer array in machine byte order .* got a >i4 array$"),
    (np.zeros(100, bool), r"^copy_from: expected an integer array .* got a bool array$"),
    (np.zeros(24, np.int32), r"^copy_from: expected 100 bytes \(the size of the device buffer at 0x[0-9a-f]+\), "
                             r"got 96 \(a \(24,\) int32 array\)$"),
    (b"\0" * 99, r"^copy_from: expected 100 bytes \(the size of the device buffer at 0x[0-9a-f]+\), got 99 bytes$"),
])
def test_copy_from_refuses_wrong_type_or_size(rt, arr, got):
    buf = rt.alloc(100)
    buf.copy_from(np.full(100, 7, np.uint8))
    with pytest.raises(BackendError, match=got):
        buf.copy_from(arr)
    assert (buf.view() == 7).all()


@pytest.mark.parametrize("arr,got", [
    ([0] * 100, r"^copy_to: expected a numpy integer array, got list$"),
    (np.zeros(25, np.float32), r"^copy_to: expected an integer array .* got a float32 array$"),
    (np.zeros(24, np.int32), r"^copy_to: expected 100 bytes \(the size of the device buffer at 0x[0-9a-f]+\), "
                             r"got 96 \(a \(24,\) int32 array\)$"),
    (np.zeros((10, 20), np.int8)[:, :10], r"^copy_to: the destination array must be C-contiguous and writeable$"),
])
def test_copy_to_refuses_wrong_type_or_size(rt, arr, got):
    buf = rt.alloc(100)
    with pytest.raises(BackendError, match=got):
        buf.copy_to(arr)


def test_copies_round_trip_integer_arrays_and_bytes(rt):
    buf = rt.alloc(64)
    buf.copy_from(bytes(range(64)))
    assert buf.copy_to(np.zeros((4, 4), np.uint32))[0, 1] == 0x07060504
    buf.copy_from(np.arange(16, dtype=np.int32).reshape(4, 4)[:, ::-1].T)  # non-contiguous: copied in C order
    assert list(buf.copy_to(np.zeros(16, np.int32))[:4]) == [3, 7, 11, 15]


def test_closed_runtime_refuses_everything():
    rt = Runtime("sim")
    buf = rt.alloc(4096)
    q = rt.queue
    rt.close()
    calls = {
        "alloc": lambda: rt.alloc(4096),
        "alloc_at": lambda: rt.alloc_at(1 << 20, 4096),
        "free": lambda: rt.free(buf),
        "launch": lambda: rt.launch(buf, 0, 1),
        "last_timing": rt.last_timing,
        "view": buf.view,
        "copy_from": lambda: buf.copy_from(np.zeros(4096, np.uint8)),
        "copy_to": buf.copy_to,
        "load_2d": lambda: q.load_2d(buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP),
        "store_2d": lambda: q.store_2d(0, MEM_OUT, buf, 0, 1, 1, 1),
        "push_gemm": lambda: q.push_gemm("k", lambda: UopKernel.gemm([], [(0, 0, 0)])),
        "push_alu": lambda: q.push_alu("k", lambda: UopKernel.alu([], [(0, 0)], ALU_ADD)),
        "dep_push": lambda: q.dep_push(1, 2),
        "dep_pop": lambda: q.dep_pop(1, 2),
        "set_debug_mode": lambda: q.set_debug_mode(0),
        "synchronize": q.synchronize,
    }
    for what, call in calls.items():
        with pytest.raises(BackendError, match=rf"^{what}: runtime closed$"):
            call()
    rt.close()  # idempotent
    assert rt.buffers == () and len(q.insns) == 0
