"""A device fleet on Dask distributed: each worker owns one device and runs one measurement at a time.

Pooling boards for tuning and batch runs is Dask's job, not ours: a worker is started with the
resource ``{"vta": 1}`` and :class:`DevicePlugin`, which opens its device (a board, an emulated
board or the simulator) once; every job asks for that resource, so a device never runs two jobs at
once. When a worker dies, the scheduler gives its job to another worker; :meth:`Fleet.measure`
returns exactly one result per job. The cluster's TLS security (``distributed.security.Security``)
decides who may submit: with ``Fleet.local`` a fresh temporary certificate, with ``vta fleet
worker`` the files you give. Needs the ``fleet`` extra: ``pip install ".[fleet]"`` from the checkout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vta.errors import BackendError, VTAError

if TYPE_CHECKING:
    from vta.compiler.program import Program
    from vta.runtime.api import Runtime

__all__ = ["DevicePlugin", "Fleet", "Job", "Measurement", "require_distributed"]

try:
    from distributed import WorkerPlugin
except ImportError:  # Fleet says what to install when it is used
    WorkerPlugin = object

PLUGIN_NAME = "vta-device"
RESOURCE = {"vta": 1}


def require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise VTAError('the device fleet needs Dask distributed: pip install ".[fleet]" from the pynq-vta '
                       "checkout") from None
    return distributed


@dataclass(frozen=True)
class Job:
    """One measurement: a compiled program, its input arrays, the output it fills, how many runs to time."""

    key: str
    program: Program
    inputs: tuple[np.ndarray, ...]
    output_shape: tuple[int, ...]
    output_dtype: str = "int8"
    repeats: int = 1


@dataclass(frozen=True)
class Measurement:
    """What a worker measured: the output, the wall time of each run, and the modeled cycles when its device has
    a timing model."""

    key: str
    output: np.ndarray
    wall_s: tuple[float, ...]
    modeled_cycles: int | None
    worker: str


class DevicePlugin(WorkerPlugin):
    """Opens the worker's device when the worker starts and closes it when it stops."""

    name = PLUGIN_NAME

    def __init__(self, mode: str = "sim"):
        if mode not in ("sim", "emulate", "pynq"):
            raise BackendError(f"fleet device mode must be sim, emulate or pynq, got {mode!r}")
        self.mode = mode
        self.runtime: Runtime | None = None
        self._board: Any = None

    def setup(self, worker: Any = None) -> None:
        from vta.runtime import Runtime

        if self.mode == "sim":
            self.runtime = Runtime("sim")
            return
        from vta.runtime.backends.board import BoardBackend

        if self.mode == "emulate":
            from vta.driver.emulated import EmulatedBoard

            self._board = EmulatedBoard.start()
        self.runtime = Runtime(BoardBackend(emulator=self._board))

    def teardown(self, worker: Any = None) -> None:
        if self.runtime is not None:
            self.runtime.close()
        if self._board is not None:
            self._board.stop()


def run_job(job: Job) -> Measurement:
    """Run on a worker: the job's program on the worker's device, ``repeats`` times (the last output is kept)."""
    worker = require_distributed().get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None or plugin.runtime is None:
        raise BackendError(f"fleet worker {worker.address} has no device: start it with `vta fleet worker`")
    rt = plugin.runtime
    out = np.zeros(job.output_shape, np.dtype(job.output_dtype))
    times = []
    for _ in range(job.repeats):
        start = time.perf_counter()
        job.program.run(*job.inputs, out, runtime=rt)
        times.append(time.perf_counter() - start)
    cycles = rt.last_timing().cycles if "timing" in rt.backend.capabilities else None
    return Measurement(job.key, out, tuple(times), cycles, worker.address)


class Fleet:
    """Submit measurement jobs to the workers of a Dask cluster that carry the ``vta`` resource."""

    def __init__(self, client: Any, cluster: Any = None):
        self.client, self.cluster = client, cluster

    @classmethod
    def local(cls, n_workers: int = 2, mode: str = "sim") -> Fleet:
        """A cluster on this machine (what a laptop gets with no set-up): ``n_workers`` processes, one device
        each, TLS with a temporary certificate."""
        distributed = require_distributed()
        from distributed.security import Security

        security = Security.temporary()
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           resources=RESOURCE, security=security, dashboard_address=None)
        client = distributed.Client(cluster, security=security)
        client.register_plugin(DevicePlugin(mode))
        return cls(client, cluster)

    def measure(self, jobs: Sequence[Job]) -> list[Measurement]:
        """One measurement per job, in the jobs' order; a job whose worker died runs again on another."""
        keys = [job.key for job in jobs]
        if len(set(keys)) != len(keys):
            raise BackendError("fleet: job keys must be unique (each job's result is returned exactly once)")
        futures = self.client.map(run_job, jobs, key=[f"vta-job-{k}" for k in keys], resources=RESOURCE,
                                  pure=False)
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
