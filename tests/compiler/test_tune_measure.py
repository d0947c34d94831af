"""The measurers agree on what they share, and failures or wrong outputs are errors, never times."""

from __future__ import annotations

import time

import pytest

from tests.runtime.slow_network import NETWORK_S, SlowNetwork
from vta.compiler.ops import Conv2dWorkload, Epilogue, conv2d
from vta.compiler.tune import TuneError
from vta.compiler.tune.measure import BoardMeasurer, ModelMeasurer, RpcMeasurer, SimMeasurer, create_measurer
from vta.compiler.tune.task import Task, conv2d_task, dense_task
from vta.compiler.tune.tuner import Tuner
from vta.runtime.rpc.server import ServerConfig, Session, TcpServer

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
    with pytest.raises(TuneError, match=r"^unknown measurer 'fpga'; measurers: model, sim, board, rpc, fleet "
                                        r"\(board is the pynq backend\)$"):
        create_measurer("fpga")
    with pytest.raises(TuneError, match=r"^board measurer: repeat=0: expected at least 1 run$"):
        create_measurer("pynq", repeat=0)
    assert isinstance(create_measurer("model"), ModelMeasurer)


# --- a board behind vta rpc serve --------------------------------------------------------------
TOKEN = "a-test-token-of-enough-length"


@pytest.fixture
def rpc_board(board, env):
    """The emulated board served on loopback, as ``vta rpc serve --emulate`` serves it."""
    srv = TcpServer(ServerConfig(mode="emulate", token=TOKEN, env=env, emulator=board)).start()
    yield f"tcp://127.0.0.1:{srv.address[1]}"
    srv.stop()




def _both(board, url, task, indices):
    """Results of ``indices`` on the emulated board directly and through rpc (one device holder at a time)."""
    out = []
    for measurer in (BoardMeasurer(emulator=board, timeout_s=10.0, repeat=1),
                     RpcMeasurer(url=url, token=TOKEN, timeout_s=10.0, repeat=1)):
        try:
            out.append(measurer.measure(task, indices))
        finally:
            measurer.close()
    return out


def test_rpc_measurer_agrees_with_the_board_measurer(board, rpc_board):
    task = conv2d_task(SMALL)
    refused = next(i for i in task.space if task.space.reason(i) and "rewrite" not in task.space.reason(i))
    indices = [*task.space.valid.tolist()[:3], refused]
    local, remote = _both(board, rpc_board, task, indices)
    assert [(r.index, r.ok) for r in remote] == [(r.index, r.ok) for r in local] == \
        [(i, i != refused) for i in indices]
    assert remote[-1].error == local[-1].error and remote[-1].error.startswith("compile: ")
    assert all(r.seconds > 0 for r in remote[:3])
    wrong = _WrongEpilogueTask(task.space, task.epilogue)
    local, remote = _both(board, rpc_board, wrong, indices[:1])
    assert local[0].error.startswith("board: wrong output: ")
    assert remote[0].seconds is None and remote[0].error.startswith("rpc: wrong output: ") \
        and remote[0].error.endswith("elements differ from numpy")


def test_a_tuning_run_through_rpc_measures_what_the_board_measurer_measures(board, rpc_board):
    task = conv2d_task(SMALL)
    results = []
    for measurer in (BoardMeasurer(emulator=board, timeout_s=10.0, repeat=1),
                     RpcMeasurer(url=rpc_board, token=TOKEN, timeout_s=10.0, repeat=1)):
        try:
            results.append(Tuner(task, measurer, "grid", seed=0, batch=2).run(4))
        finally:
            measurer.close()
    local, remote = results
    assert [(r.index, r.ok) for r in remote.trials] == [(r.index, r.ok) for r in local.trials]
    assert len(remote.trials) == 4 and all(r.ok for r in remote.trials) and remote.best is not None


def test_rpc_time_is_the_servers_device_time_not_the_round_trip(rpc_board, monkeypatch):
    served: list[float] = []
    serve_run = Session._run

    def spy(self, req):
        reply = serve_run(self, req)
        served.append(reply["device_s"])
        return reply

    monkeypatch.setattr(Session, "_run", spy)
    task = dense_task("d", 1, 4, 4)
    measurer = RpcMeasurer(url=rpc_board, token=TOKEN, timeout_s=10.0, repeat=2)
    try:
        measurer.open()
        measurer._rt.backend.conn.__class__ = SlowNetwork
        start = time.perf_counter()
        (result,) = measurer.measure(task, task.space.valid.tolist()[:1])
        wall = time.perf_counter() - start
    finally:
        measurer.close()
    assert result.ok, result.error
    assert len(served) == 2 and wall >= 2 * NETWORK_S  # one device run per program run, each delayed
    assert result.seconds == min(served) and result.seconds < NETWORK_S
    assert measurer.kind == "measured on the served board"


def test_rpc_measurer_refuses_a_served_simulator_and_needs_a_url(env, tmp_path):
    srv = TcpServer(ServerConfig(mode="sim", token=TOKEN, lock_path=str(tmp_path / "lock"), env=env)).start()
    measurer = RpcMeasurer(url=f"tcp://127.0.0.1:{srv.address[1]}", token=TOKEN)
    try:
        with pytest.raises(TuneError, match=r"^rpc measurer: the server at tcp://127\.0\.0\.1:\d+ serves the sim "
                                            r"backend, whose run times are not a board's; "):
            measurer.open()
    finally:
        measurer.close()
        srv.stop()
    with pytest.raises(TuneError, match=r"^rpc measurer: give the server's url"):
        create_measurer("rpc")
    with pytest.raises(TuneError, match=r"^rpc measurer: repeat=0: expected at least 1 run$"):
        create_measurer("rpc", url="tcp://127.0.0.1:1", repeat=0)
