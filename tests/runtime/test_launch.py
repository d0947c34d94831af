"""Pre-built streams through Runtime.launch: verified first, refused ones never reach the backend."""

import numpy as np
import pytest

from vta.errors import BackendError, DramOutOfBoundsError
from vta.runtime import Runtime
from vta.sim.vector import load_vector


def test_launch_a_golden_vector_on_the_sim_backend(vectors_dir):
    v = load_vector(vectors_dir / "random/rand_006")  # placed at 0x10000000, clear of the runtime's own buffers
    with Runtime("sim") as rt:
        buf = rt.alloc_at(v.phys_base, len(v.mem_in))
        buf.copy_from(v.mem_in)
        status = rt.launch(buf, v.meta["insn_offset"], v.insn_count)
        assert np.array_equal(buf.copy_to(), v.mem_out) and status.counters == v.stats


def test_refused_stream_never_reaches_the_backend(vectors_dir, monkeypatch):
    v = load_vector(vectors_dir / "negative/neg_dram_oob_3")  # at 0x40000000
    with Runtime("sim") as rt:
        calls = []
        monkeypatch.setattr(rt.backend, "_run", lambda *a: calls.append(a))
        buf = rt.alloc_at(v.phys_base, len(v.mem_in))
        buf.copy_from(v.mem_in)
        with pytest.raises(DramOutOfBoundsError, match=r"^dram_oob: .*LOAD ACC_8BIT at 0x"):
            rt.launch(buf, v.meta["insn_offset"], v.insn_count)
        assert calls == [] and np.array_equal(buf.copy_to(), v.mem_in)


def test_launch_argument_errors():
    with Runtime("sim") as rt:
        buf = rt.alloc(4096)
        with pytest.raises(BackendError, match=r"^launch: 2 instructions at byte 8 do not lie on a 16-byte boundary"):
            rt.launch(buf, 8, 2)
        with pytest.raises(BackendError, match=r"^launch: 300 instructions at byte 0 do not lie"):
            rt.launch(buf, 0, 300)
