"""One suite for every backend that can run here: same results, same errors.

Adding a backend means adding one entry to ``BACKENDS`` below (a factory taking the env and
the pytest request, so it can use session fixtures such as the emulated board).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime import programs
from vta.errors import BackendError, RaceError
from vta.isa import MEM_ACC, MEM_INP, MEM_WGT
from vta.runtime import Backend, Runtime, UopKernel


def _sim(env, request):
    from vta.runtime.backends.sim import SimBackend
    return SimBackend(env)


def _pynq_emulated(env, request):
    from vta.runtime.backends.board import BoardBackend
    return BoardBackend(env, emulator=request.getfixturevalue("board"), timeout_s=5.0)


def _rpc(mode):
    """The rpc backend over loopback to an in-process ``vta rpc serve --sim`` (or ``--emulate``) server."""
    def factory(env, request):
        from vta.runtime.backends.remote import RemoteBackend
        from vta.runtime.rpc.server import ServerConfig, TcpServer

        emulator = request.getfixturevalue("board") if mode == "emulate" else None
        lock = request.getfixturevalue("tmp_path") / "rpc.lock"
        server = TcpServer(ServerConfig(mode=mode, token="contract", lock_path=str(lock), env=env,
                                        emulator=emulator)).start()
        request.addfinalizer(server.stop)
        return RemoteBackend(env, url=f"tcp://127.0.0.1:{server.address[1]}", token="contract")
    return factory


BACKENDS = {"sim": _sim, "pynq-emulated": _pynq_emulated, "rpc-sim": _rpc("sim"), "rpc-emulated": _rpc("emulate")}


@pytest.fixture(params=list(BACKENDS))
def backend(request, env):
    be = BACKENDS[request.param](env, request)
    yield be
    be.close()


def test_buffers_round_trip(backend: Backend):
    buf = backend.alloc(5000)
    assert backend.phys(buf) % 4096 == 0 and backend.phys(buf) > 0
    data = np.arange(5000, dtype=np.uint32).astype(np.uint8)
    backend.copy_in(buf, 0, data)
    backend.flush(buf)
    backend.invalidate(buf)
    assert np.array_equal(backend.copy_out(buf, 100, 200), data[100:300])
    assert np.array_equal(backend.view(buf)[:5000], data)
    backend.free(buf)


def test_argument_errors(backend: Backend):
    buf = backend.alloc(64)
    with pytest.raises(BackendError, match=rf"^{backend.name} backend: copy_in of 65 bytes at offset 0 does not fit "
                                           r"the 64-byte buffer at 0x[0-9a-f]+$"):
        backend.copy_in(buf, 0, bytes(65))
    with pytest.raises(BackendError, match=rf"^{backend.name} backend: alloc size must be an integer in 1\.\.33554432"):
        backend.alloc(0)
    with pytest.raises(BackendError, match=rf"^{backend.name} backend: run needs a positive timeout in seconds, "
                                           r"got None$"):
        backend.run(backend.phys(buf), 1, None)
    backend.free(buf)
    with pytest.raises(BackendError, match=rf"^{backend.name} backend: free got a buffer that is not a live buffer"):
        backend.free(buf)


def test_counters_capability(backend: Backend):
    if "counters" in backend.capabilities:
        assert set(backend.counters()) >= {"gemm_counter", "alu_counter"}
    else:
        with pytest.raises(BackendError, match=rf"^{backend.name} backend has no performance counters"):
            backend.counters()


def test_timing_capability(backend: Backend, env):
    rt = Runtime(backend, env=env)
    programs.matmul_tile(rt, np.random.default_rng(1))
    if "timing" in backend.capabilities:
        assert backend.timing().gemm_uops == 16 and rt.last_timing() is backend.timing()
    else:
        with pytest.raises(BackendError, match=rf"^{backend.name} backend has no timing model \(capabilities: "):
            backend.timing()


def test_same_results_through_the_runtime(backend: Backend, env):
    rng = np.random.default_rng(3)
    rt = Runtime(backend, env=env, insn_capacity=4096, uop_capacity=4096)
    got, want = programs.matmul_tile(rt, rng)
    assert np.array_equal(got, want)
    got, want = programs.conv3x3_tile(rt, rng)
    assert np.array_equal(got, want)


def test_same_refusal_through_the_runtime(backend: Backend, env):
    rt = Runtime(backend, env=env, insn_capacity=4096, uop_capacity=4096)
    q = rt.queue
    for n, mt in ((256, MEM_INP), (256, MEM_WGT), (64, MEM_ACC)):
        q.load_2d(programs.put(rt, np.zeros(n, np.int8)), 0, 1, 1, 1, 0, 0, 0, 0, 0, mt)
    q.push_gemm("g", lambda: UopKernel.gemm([], [(0, 0, 0)], env=env))
    with pytest.raises(RaceError, match=r"^race: instruction 4, compute module: GEMM reads INP entries 0\.\.0"):
        q.synchronize()
    q.synchronize()  # nothing reached the device, so it is still usable
