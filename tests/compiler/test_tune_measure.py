"""The measurers agree on what they share, and failures or wrong outputs are errors, never times."""

from __future__ import annotations

import pytest

from vta.compiler.ops import Conv2dWorkload, Epilogue, conv2d
from vta.compiler.tune import TuneError
from vta.compiler.tune.measure import BoardMeasurer, ModelMeasurer, SimMeasurer, create_measurer
from vta.compiler.tune.task import Task, conv2d_task, dense_task

SMALL = Conv2dWorkload("small", 6, 6, 16, 32, 3, 1, 1)


class _WrongEpilogueTask(Task):
    """A schedule whose epilogue differs from its reference's, as a broken template would be."""

    def operator(self, index):
        op = conv2d(self.space.workload, self.space.config(index), Epilogue(shift=3))
        good = conv2d(self.space.workload, self.space.config(index), self.epilogue)
        return type(op)(op.name, op.schedule, op.args, good.reference)


def test_model_and_simulator_give_the_same_modeled_time():
    task = conv2d_task(SMALL)
    indices = task.space.valid.tolist()[:2]
    model = ModelMeasurer().measure(task, indices)
    sim = SimMeasurer()
    try:
        simulated = sim.measure(task, indices)
    finally:
        sim.close()
    assert [r.seconds for r in model] == [r.seconds for r in simulated]
    assert all(r.ok and r.seconds > 0 and r.gops(task.ops) > 0 for r in model)


def test_compile_failure_is_an_error_not_a_time():
    task = conv2d_task(SMALL)
    bad = next(i for i in task.space if task.space.reason(i) and "rewrite" not in task.space.reason(i))
    (result,) = ModelMeasurer().measure(task, [bad])
    assert not result.ok and result.seconds is None and result.gops(task.ops) == 0.0
    assert result.error.startswith("compile: conv2d small: ")


def test_wrong_output_is_an_error_not_a_time():
    good = conv2d_task(SMALL)
    task = _WrongEpilogueTask(good.space, good.epilogue)
    sim = SimMeasurer()
    try:
        (result,) = sim.measure(task, task.space.valid.tolist()[:1])
    finally:
        sim.close()
    assert result.seconds is None
    assert result.error.startswith("sim: wrong output: ") and result.error.endswith("elements differ from numpy")


def test_board_measurer_on_the_emulated_board(board):
    task = dense_task("d", 1, 4, 4)
    index = task.space.valid.tolist()[0]
    measurer = BoardMeasurer(emulator=board, timeout_s=10.0, repeat=2)
    try:
        (result,) = measurer.measure(task, [index])
    finally:
        measurer.close()
    assert result.ok, result.error
    assert result.seconds > 0
    assert measurer.kind == "measured"


def test_unknown_measurer_and_bad_repeat_are_errors():
    with pytest.raises(TuneError, match=r"^unknown measurer 'fpga'; measurers: model, sim, board, fleet \(board is the "
                                        r"pynq backend\)$"):
        create_measurer("fpga")
    with pytest.raises(TuneError, match=r"^board measurer: repeat=0: expected at least 1 run$"):
        create_measurer("pynq", repeat=0)
    assert isinstance(create_measurer("model"), ModelMeasurer)
