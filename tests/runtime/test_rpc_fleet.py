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
from vta.errors import BackendError
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
        assigned = set(fleet.client.processing()[busy[0]])  # running there, or queued behind the running one
        os.kill(pids[busy[0]], signal.SIGKILL)  # the worker dies in the middle of its job
        runner.join(120)
        assert not runner.is_alive()
    shutil.rmtree(Path(images[busy[0]]).parent)  # the killed worker could not remove its emulator's files
    assert [r.key for r in results] == [j.key for j in jobs]  # one result per job, in order
    for r in results:
        assert np.array_equal(r.output, want), r.key
        assert len(r.wall_s) == 15 and r.modeled_cycles is None  # the emulated board has no timing model
    retried = [r for r in results if f"vta-job-{r.key}" in assigned]
    assert retried and all(r.worker != busy[0] for r in retried)  # the interrupted jobs ran again elsewhere


def test_simulator_workers_return_modeled_cycles(conv):
    prog, a, w, want = conv
    from distributed import Client
    from distributed.security import Security

    with Fleet.local(1, "sim") as fleet:
        (r,) = fleet.measure([Job("one", prog, (a, w), want.shape)])
        with pytest.raises((OSError, TimeoutError)):  # a certificate the cluster does not trust cannot submit
            Client(fleet.cluster.scheduler_address, security=Security.temporary(), timeout=2)
    assert np.array_equal(r.output, want) and r.modeled_cycles > 0


def test_job_keys_must_be_unique_and_modes_known(conv):
    prog, a, w, want = conv
    with pytest.raises(BackendError, match=r"^fleet device mode must be sim, emulate or pynq, got 'gpu'$"):
        DevicePlugin("gpu")
    fleet = Fleet(client=None)
    with pytest.raises(BackendError, match=r"^fleet: job keys must be unique"):
        fleet.measure([Job("x", prog, (a, w), want.shape), Job("x", prog, (a, w), want.shape)])


def test_vta_fleet_worker_joins_a_tls_cluster(conv, tmp_path):
    import re
    import subprocess
    import sys

    from distributed import Client, LocalCluster
    from distributed.security import Security

    from tests.runtime.test_rpc import _self_signed

    prog, a, w, want = conv
    cert, key = _self_signed(tmp_path)
    security = Security(tls_ca_file=cert, tls_scheduler_cert=cert, tls_scheduler_key=key, tls_client_cert=cert,
                        tls_client_key=key, require_encryption=True)
    with LocalCluster(n_workers=0, processes=True, security=security, dashboard_address=None) as cluster, \
            Client(cluster, security=security) as client:
        proc = subprocess.Popen([sys.executable, "-m", "vta.cli", "fleet", "worker", cluster.scheduler_address,
                                 "--sim", "--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert re.match(r"vta fleet: worker tls://127\.0\.0\.1:\d+ offers one sim device", proc.stdout.readline())
            (r,) = Fleet(client).measure([Job("cli", prog, (a, w), want.shape)])
            assert np.array_equal(r.output, want) and r.modeled_cycles > 0
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
