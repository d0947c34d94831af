"""The device fleet on Dask distributed: a local TLS cluster of workers, each with its own device, and a worker
killed in the middle of a job."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from tests.compiler.test_build import CONVS, _conv
from vta.compiler.tune.measure import model_seconds
from vta.errors import BackendError
from vta.runtime import Runtime
from vta.runtime.fleet import DevicePlugin, Fleet, Job


@pytest.fixture(scope="module")
def conv():
    return _conv(*CONVS["3x3 s1 p1, oc threads"], np.random.default_rng(11))


def test_killed_worker_job_is_retried_elsewhere_exactly_once(conv):
    prog, a, w, want = conv
    jobs = [Job(f"conv-{i}", prog, (a, w), want.shape, repeats=15) for i in range(6)]
    with Fleet.local(2, "emulate") as fleet:
        assert fleet.client.scheduler.address.startswith("tls://")
        pids = fleet.client.run(os.getpid)
        images = fleet.client.run(lambda dask_worker: str(dask_worker.plugins["vta-device"]._board.path))
        results: list = []
        runner = threading.Thread(target=lambda: results.extend(fleet.measure(jobs)))
        runner.start()
        end = time.monotonic() + 60
        while True:
            busy = [addr for addr, keys in fleet.client.processing().items() if keys]
            if busy:
                break
            assert time.monotonic() < end, "no job started"
            time.sleep(0.02)
        assert fleet.client.processing()[busy[0]]  # a batch running there, maybe others queued behind it
        os.kill(pids[busy[0]], signal.SIGKILL)  # the worker dies in the middle of its job
        runner.join(120)
        assert not runner.is_alive()
    shutil.rmtree(Path(images[busy[0]]).parent)  # the killed worker could not remove its emulator's files
    assert [r.key for r in results] == [j.key for j in jobs]  # one result per job, in order
    for r in results:
        assert np.array_equal(r.output, want), r.key
        assert len(r.wall_s) == 15 and r.modeled_cycles is None  # the emulated board has no timing model
    # what the dead worker held (running, queued or finished but not yet gathered) ran again elsewhere
    assert busy[0] not in {r.worker for r in results}


@pytest.fixture(scope="module")
def sim_fleet():
    with Fleet.local(1, "sim") as fleet:
        yield fleet


def test_simulator_workers_return_modeled_cycles(conv, sim_fleet):
    prog, a, w, want = conv
    from distributed import Client
    from distributed.security import Security

    (r,) = sim_fleet.measure([Job("one", prog, (a, w), want.shape)])
    with pytest.raises((OSError, TimeoutError)):  # a certificate the cluster does not trust cannot submit
        Client(sim_fleet.cluster.scheduler_address, security=Security.temporary(), timeout=2)
    assert np.array_equal(r.output, want) and r.modeled_cycles > 0
    with Runtime("sim") as rt:
        prog.run(a, w, np.zeros_like(want), runtime=rt)
        assert (r.kind, r.seconds, r.modeled_cycles) == ("modeled", rt.last_timing().seconds, rt.last_timing().cycles)


def test_timing_only_jobs_are_modeled_not_executed(conv, sim_fleet):
    prog = conv[0]
    runs = sim_fleet.client.run(lambda dask_worker: dask_worker.plugins["vta-device"].runtime.stats.runs)
    results = sim_fleet.measure([Job.timing(f"t{i}", prog) for i in range(5)], batch=2)
    assert sim_fleet.client.run(lambda dask_worker: dask_worker.plugins["vta-device"].runtime.stats.runs) == runs
    assert [r.key for r in results] == [f"t{i}" for i in range(5)]
    for r in results:
        assert r.ok and r.kind == "modeled" and r.output is None and r.wall_s == ()
        assert r.seconds == model_seconds(prog)


def test_jobs_travel_in_batches_to_quiet_workers(conv, sim_fleet):
    import dask
    from distributed import get_task_stream

    from vta.runtime.fleet import BATCHES_PER_WORKER

    jobs = [Job.timing(f"b{i}", conv[0]) for i in range(12)]
    for batch, tasks in ((None, BATCHES_PER_WORKER), (1, 12), (5, 3)):
        with get_task_stream(sim_fleet.client) as stream:
            assert [r.key for r in sim_fleet.measure(jobs, batch)] == [j.key for j in jobs]
        assert len(stream.data) == tasks  # one scheduler round trip per batch, not per job
    # the worker's stack sampler and fast event-loop tick would take CPU and the GIL from the measuring thread
    assert set(sim_fleet.client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                             dask.config.get("distributed.admin.tick.interval"))).values()) == \
        {(False, "1s")}


class _Crashing:
    """A program source whose compiler has a bug (not a VTAError): its whole batch fails on the worker."""

    def compile(self):
        raise RuntimeError("compiler bug")


def test_a_failing_batch_is_an_error_of_each_of_its_jobs_only(conv, sim_fleet):
    crash, good = sim_fleet.measure([Job.timing("crash", _Crashing()), Job.timing("good", conv[0])], batch=1)
    assert crash.error == "the fleet could not run it: RuntimeError: compiler bug" and crash.seconds is None
    assert good.ok and good.seconds > 0


def test_a_failing_job_is_an_error_of_its_own_in_its_batch(conv, sim_fleet):
    prog, a, w, want = conv
    jobs = [Job("good", prog, (a, w), want.shape), Job("bad", prog, (a,), want.shape),
            Job.timing("timed", prog)]
    good, bad, timed = sim_fleet.measure(jobs, batch=3)
    assert good.ok and np.array_equal(good.output, want) and timed.ok
    assert bad.error.startswith("program conv takes 3 arguments") and bad.seconds is None and bad.output is None
    with pytest.raises(BackendError, match=r"^fleet: batch=0: expected at least 1 job per batch$"):
        sim_fleet.measure(jobs, batch=0)


def test_job_keys_must_be_unique_and_modes_known(conv):
    prog, a, w, want = conv
    with pytest.raises(BackendError, match=r"^fleet device mode must be sim, emulate or pynq, got 'gpu'$"):
        DevicePlugin("gpu")
    with pytest.raises(BackendError, match=r"^fleet job x: repeats=0: expected at least 1 run$"):
        Job("x", prog, (a, w), want.shape, repeats=0)
    fleet = Fleet(client=None)
    with pytest.raises(BackendError, match=r"^fleet: job keys must be unique"):
        fleet.measure([Job("x", prog, (a, w), want.shape), Job("x", prog, (a, w), want.shape)])


def test_vta_fleet_worker_joins_a_tls_cluster(conv, tmp_path, capsys):
    import re
    import subprocess
    import sys

    from distributed import Client, LocalCluster
    from distributed.security import Security

    from tests.compiler.test_tune_cli import _tasks_file
    from tests.runtime.test_rpc import _self_signed
    from vta.cli import main
    from vta.compiler.tune.autotvm_log import read_log

    prog, a, w, want = conv
    cert, key = _self_signed(tmp_path)
    security = Security(tls_ca_file=cert, tls_scheduler_cert=cert, tls_scheduler_key=key, tls_client_cert=cert,
                        tls_client_key=key, require_encryption=True)
    with LocalCluster(n_workers=0, processes=True, security=security, dashboard_address=None) as cluster, \
            Client(cluster, security=security) as client:
        with pytest.raises(BackendError, match=r"^fleet: no worker with a device joined tls://.* within 0\.5 s: "
                                               r"start one with `vta fleet worker`$"):
            Fleet.connect(cluster.scheduler_address, cert, cert, key, timeout_s=0.5)
        proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "fleet", "worker", cluster.scheduler_address,
                                 "--sim", "--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert re.match(r"vta fleet: worker tls://127\.0\.0\.1:\d+ offers one sim device", proc.stdout.readline())
            (r,) = Fleet(client).measure([Job("cli", prog, (a, w), want.shape)])
            assert np.array_equal(r.output, want) and r.modeled_cycles > 0
            log = tmp_path / "fleet.log"  # the tuner on that cluster, timing only
            assert main(["tune", "--tasks", str(_tasks_file(tmp_path)), "--trials", "2", "--measurer", "fleet",
                         "--scheduler", cluster.scheduler_address, "--tls-ca-file", cert, "--tls-cert", cert,
                         "--tls-key", key, "--log", str(log)]) == 0
            assert "2/2 best" in capsys.readouterr().err
            assert len(read_log(log)) == 4 and all(rec.error_no == 0 for rec in read_log(log))
        finally:
            proc.terminate()
            assert proc.wait(20) == 0


def test_missing_distributed_names_the_extra(monkeypatch):
    import sys

    from vta.errors import VTAError
    from vta.runtime.fleet import require_distributed

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(VTAError, match=r'^the device fleet needs Dask distributed: pip install "\.\[fleet\]" from'):
        require_distributed()
