"""The fleet measurer: a local cluster of 2 simulator workers measures batches in parallel, picks what the
model and the simulator pick, records failures per configuration, and survives a worker killed mid-batch."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytest.importorskip("distributed")

from tests.compiler.test_tune_measure import _WrongEpilogueTask
from tests.compiler.tune_helpers import SMALL
from vta.compiler.ops import Conv2dWorkload
from vta.compiler.tune import TuneError
from vta.compiler.tune.fleet_measure import FleetMeasurer
from vta.compiler.tune.measure import ModelMeasurer, SimMeasurer, create_measurer
from vta.compiler.tune.task import conv2d_task
from vta.compiler.tune.tuner import Tuner
from vta.runtime.fleet import Fleet


class _Recording(Fleet):
    """The module's fleet, remembering what each measure call sent and got back."""

    def __init__(self, fleet: Fleet):
        super().__init__(fleet.client, fleet.cluster)
        self.calls: list[list] = []

    def measure(self, jobs, batch=None):
        results = super().measure(jobs, batch)
        self.calls.append(results)
        return results


@pytest.fixture(scope="module")
def fleet():
    with Fleet.local(2, "sim") as f:
        yield _Recording(f)


def _tune(measurer, trials=12):
    task = conv2d_task(SMALL)
    try:
        return Tuner(task, measurer, "xgb", seed=3, batch=4).run(trials)
    finally:
        measurer.close()


def test_timing_only_tuning_matches_the_model_measurer_and_runs_batches_in_parallel(fleet):
    fleet.calls.clear()
    on_fleet = _tune(FleetMeasurer(fleet=fleet))
    model = _tune(ModelMeasurer())
    assert [(r.index, r.seconds) for r in on_fleet.trials] == [(r.index, r.seconds) for r in model.trials]
    assert on_fleet.best.index == model.best.index
    assert len(fleet.calls) == 3 and all(len(c) == 4 for c in fleet.calls)  # one fleet call per batch of 4
    assert {m.kind for c in fleet.calls for m in c} == {"modeled"}
    assert all(m.output is None for c in fleet.calls for m in c)  # timing only: nothing was executed
    assert len({m.worker for c in fleet.calls for m in c}) == 2  # both workers measured


def test_executing_tuning_matches_the_simulator_measurer(fleet):
    fleet.calls.clear()
    measurer = FleetMeasurer(execute=True, fleet=fleet)
    on_fleet = _tune(measurer)
    sim = _tune(SimMeasurer())
    assert measurer.kind == "modeled"  # simulator workers: modeled times of the programs that ran
    assert [(r.index, r.seconds) for r in on_fleet.trials] == [(r.index, r.seconds) for r in sim.trials]
    assert on_fleet.best.index == sim.best.index == _tune(ModelMeasurer()).best.index
    assert all(m.output is not None and len(m.wall_s) == 1 for c in fleet.calls for m in c)


def test_wrong_output_and_compile_failure_are_errors_of_their_own_configuration(fleet):
    good = conv2d_task(SMALL)
    wrong = _WrongEpilogueTask(good.space, good.epilogue)
    ok = good.space.valid.tolist()[:2]
    (bad_output, *_), = [FleetMeasurer(execute=True, fleet=fleet).measure(wrong, ok[:1])]
    assert bad_output.seconds is None
    assert bad_output.error.startswith("fleet: wrong output: ") and "elements differ from numpy" in bad_output.error
    invalid = next(i for i in good.space if good.space.reason(i) and "rewrite" not in good.space.reason(i))
    for execute in (False, True):
        first, broken, last = FleetMeasurer(execute=execute, fleet=fleet).measure(good, [ok[0], invalid, ok[1]])
        assert first.ok and last.ok and first.seconds > 0
        assert broken.seconds is None and broken.error.startswith("compile: conv2d small: ")


def test_bad_options_are_clear_errors():
    with pytest.raises(TuneError, match=r"^fleet measurer: the scheduler tls://10\.0\.0\.1:8786 needs --tls-ca-file"):
        create_measurer("fleet", scheduler="tls://10.0.0.1:8786")
    with pytest.raises(TuneError, match=r"^fleet measurer: --tls-ca-file, --tls-cert and --tls-key go with "):
        FleetMeasurer(tls_ca_file="ca.pem")
    with pytest.raises(TuneError, match=r"^fleet measurer: repeat=0: expected at least 1 run$"):
        FleetMeasurer(repeat=0)


def test_a_killed_worker_configurations_are_measured_elsewhere(fleet):
    """Kept last in the module: the nanny restarts the killed worker, and the test waits for it."""
    task = conv2d_task(Conv2dWorkload("big", 28, 28, 64, 64, 3, 1, 1))
    indices = task.space.valid.tolist()[:8]
    pids = fleet.client.run(os.getpid)
    results: list = []
    runner = threading.Thread(target=lambda: results.extend(FleetMeasurer(fleet=fleet).measure(task, indices)))
    runner.start()
    end = time.monotonic() + 60
    while not (busy := [addr for addr, keys in fleet.client.processing().items() if keys]):
        assert time.monotonic() < end, "no configuration started"
        time.sleep(0.02)
    os.kill(pids[busy[0]], signal.SIGKILL)
    runner.join(180)
    assert not runner.is_alive()
    assert [r.index for r in results] == indices  # one result per configuration, in order
    assert [r.seconds for r in results] == [r.seconds for r in ModelMeasurer().measure(task, indices)]
    assert busy[0] not in {m.worker for m in fleet.calls[-1]}  # what the dead worker held was measured again elsewhere
    fleet.client.wait_for_workers(2, timeout=60)


def test_vta_tune_with_the_fleet_measurer_starts_a_local_cluster(tmp_path, capsys):
    from tests.compiler.test_tune_cli import _tasks_file
    from vta.cli import main
    from vta.compiler.tune.autotvm_log import read_log

    one = tmp_path / "one.jsonl"
    one.write_text(_tasks_file(tmp_path).read_text().splitlines()[0] + "\n")
    log = tmp_path / "fleet.log"
    assert main(["tune", "--tasks", str(one), "--trials", "3", "--measurer", "fleet", "--execute", "--cost-model",
                 "random", "--log", str(log)]) == 0
    assert "3/3 best" in capsys.readouterr().err
    records = read_log(log)
    assert len(records) == 3 and all(r.ok for r in records)
    assert main(["tune", "--tasks", str(one), "--execute", "--log", str(log)]) == 1
    assert "--execute applies to --measurer fleet only, not --measurer model" in capsys.readouterr().err
