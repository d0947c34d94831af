"""The board suite's vector relocation, checked here on the simulator (it runs unmarked, off the board)."""

from __future__ import annotations

import numpy as np

from tests.board.relocate import insn_region, relocated_image
from tests.driver.test_vectors import POSITIVE
from vta.runtime import Runtime
from vta.sim.vector import load_vector


def test_relocated_vectors_give_the_golden_image(vectors_dir, env):
    with Runtime("sim") as rt:
        for path in POSITIVE[::10]:
            vector = load_vector(vectors_dir / path)
            base = 0x20000000 if vector.phys_base != 0x20000000 else 0x30000000  # clear of the runtime's buffers
            image = relocated_image(vector, base, env)
            assert not np.array_equal(image[insn_region(vector)], vector.mem_in[insn_region(vector)]), path
            buf = rt.alloc_at(base, len(image))
            try:
                buf.copy_from(image)
                rt.launch(buf, int(vector.meta["insn_offset"]), vector.insn_count)
                got = buf.copy_to()
            finally:
                rt.free(buf)
            keep = np.ones(len(got), bool)
            keep[insn_region(vector)] = False
            assert np.array_equal(got[keep], vector.mem_out[keep]), path
