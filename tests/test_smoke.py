"""Smoke test: the public path from te.compute to instruction bytes run on the simulator."""

import numpy as np

from vta.compiler import build, te
from vta.compiler.schedule import create_schedule
from vta.runtime import Runtime


def test_tensor_expression_to_a_simulated_run():
    x = te.placeholder((1, 2, 1, 16), "int32", "x")
    acc = te.compute(x.shape, lambda *i: x[i], "acc")
    shifted = te.compute(x.shape, lambda *i: acc[i] >> 2, "shifted")
    out = te.compute(x.shape, lambda *i: shifted[i].astype("int8"), "out")
    s = create_schedule(out)
    for t, pragma in ((acc, "dma_copy"), (shifted, "alu")):
        s[t].set_scope("local.acc_buffer")
        s[t].pragma(s[t].op.axis[0], pragma)
    s[out].pragma(s[out].op.axis[0], "dma_copy")
    prog = build(s, [x, out], "smoke")
    data = np.arange(-16, 16, dtype=np.int32).reshape(x.shape) * 9
    got = np.zeros(out.shape, np.int8)
    with Runtime("sim") as rt:
        info = prog.run(data, got, runtime=rt)
    np.testing.assert_array_equal(got, (data >> 2).astype(np.int8))
    assert info.instructions >= 4 and "ALU SHR" in str(prog) and "FINISH" in prog.disassemble()
