"""Runtime API edges: registry, per-thread runtime, device buffers, kernel recording errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vta.errors import BackendError, EncodingError, RaceError, SramOutOfBoundsError, UnknownOpcodeError
from vta.runtime import Runtime, UopKernel, backend_for_target, create_backend, get_runtime


def test_registry_names(env):
    with pytest.raises(BackendError, match=r"^unknown runtime backend 'tpu'; valid names: sim, pynq, rpc$"):
        create_backend("tpu", env)
    with pytest.raises(BackendError, match=r"^runtime backend 'rpc' is not available: vta\.runtime\.backends\.remote "
                                           r"is not part of this install yet$"):
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
    with pytest.raises(BackendError, match=r"^copy_from: 104 bytes do not fit the 100-byte device buffer at 0x"):
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
