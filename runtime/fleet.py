"""A device fleet on Dask distributed: each worker owns one device and runs one measurement at a time.

Pooling boards for tuning and batch runs is Dask's job, not ours: a worker is started with the
resource ``{"vta": 1}`` and :class:`DevicePlugin`, which opens its device (a board, an emulated
board or the simulator) once; every job asks for that resource, so a device never runs two jobs at
once. When a worker dies, the scheduler gives its jobs to another worker; :meth:`Fleet.measure`
returns exactly one result per job. The cluster's TLS security (``distributed.security.Security``)
decides who may submit: with ``Fleet.local`` a fresh temporary certificate, with ``vta fleet
worker`` the files you give. Needs the ``fleet`` extra: ``pip install ".[fleet]"`` from the checkout.

Jobs travel in batches (a few per worker per call), so a short job does not pay a scheduler round
trip of its own, and a program shared by the jobs of a batch is serialized once for the batch.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from vta.errors import BackendError, VTAError

if TYPE_CHECKING:
    from vta.compiler.program import Program
    from vta.runtime.api import Runtime

__all__ = ["DevicePlugin", "Fleet", "Job", "Measurement", "ProgramSource", "require_distributed"]

log = logging.getLogger(__name__)

try:
    from distributed import WorkerPlugin
except ImportError:  # Fleet says what to install when it is used
    WorkerPlugin = object

PLUGIN_NAME = "vta-device"
RESOURCE = {"vta": 1}
BATCHES_PER_WORKER = 4  # enough batches to balance uneven jobs, few enough that round trips stay negligible
MODELED, MEASURED = "modeled", "measured"
# Dask's defaults suit a dashboard user; a fleet measures, so the background work that takes CPU (and the GIL)
# from the measuring thread is turned down: every worker's 10 ms stack sampler, the 20 ms event-loop health
# tick of every server (scheduler, nannies, workers) and the 100 ms memory polls. Halves a local cluster's idle
# CPU use and more (benchmarks/fleet.py).
QUIET_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "2s", "distributed.worker.memory.monitor-interval": "1s"}


def require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise VTAError('the device fleet needs Dask distributed: pip install ".[fleet]" from the pynq-vta '
                       "checkout") from None
    return distributed


@runtime_checkable
class ProgramSource(Protocol):
    """What a worker compiles into the job's program (e.g. one tuning configuration): data, compiled where it runs."""

    def compile(self) -> Program: ...


@dataclass(frozen=True)
class Job:
    """One measurement: a compiled program (or a :class:`ProgramSource` the worker compiles), its input arrays,
    the output it fills, how many runs to time.

    A ``timing_only`` job is not executed: the worker times the program with the performance model
    (``model_options`` go to it unchanged) and the result is labelled modeled; it needs no inputs.
    """

    key: str
    program: Program | ProgramSource
    inputs: tuple[np.ndarray, ...] = ()
    output_shape: tuple[int, ...] = ()
    output_dtype: str = "int8"
    repeats: int = 1
    timing_only: bool = False
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise BackendError(f"fleet job {self.key}: repeats={self.repeats!r}: expected at least 1 run")

    @classmethod
    def timing(cls, key: str, program: Program | ProgramSource, **model_options: Any) -> Job:
        """A timing-only job: the performance model's time of ``program``, nothing executed."""
        return cls(key, program, timing_only=True, model_options=model_options)


@dataclass(frozen=True)
class Measurement:
    """What a worker measured for one job.

    ``seconds`` is the job's time and ``kind`` says what it is: ``modeled`` (the performance model, for
    a timing-only job or a simulator worker) or ``measured`` (the best wall time of a board's runs).
    An executed job also returns its output (for the caller to check), the wall time of each run and
    the modeled cycles when the device has a timing model. A job that failed on the worker (compile
    error, refused program, device failure) has ``error`` set and no time.
    """

    key: str
    output: np.ndarray | None
    wall_s: tuple[float, ...]
    modeled_cycles: int | None
    worker: str
    seconds: float | None = None
    kind: str = MODELED
    error: str | None = None
    compile_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class DevicePlugin(WorkerPlugin):
    """Opens the worker's device when the worker starts and closes it when it stops."""

    name = PLUGIN_NAME

    def __init__(self, mode: str = "sim"):
        if mode not in ("sim", "emulate", "pynq"):
            raise BackendError(f"fleet device mode must be sim, emulate or pynq, got {mode!r}")
        self.mode = mode
        self.runtime: Runtime | None = None
        self._board: Any = None

    @property
    def kind(self) -> str:
        """What an executed job's time is on this device: the simulator's is modeled, a board's measured."""
        return MODELED if self.mode == "sim" else MEASURED

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


def _execute(job: Job, program: Program, rt: Runtime, kind: str) -> tuple[np.ndarray, tuple[float, ...],
                                                                              int | None, float]:
    out = np.zeros(job.output_shape, np.dtype(job.output_dtype))
    times = []
    runs = rt.stats.runs
    for _ in range(job.repeats):
        start = time.perf_counter()
        program.run(*job.inputs, out, runtime=rt)
        times.append(time.perf_counter() - start)
    cycles = rt.last_timing().cycles if "timing" in rt.backend.capabilities else None
    if kind == MEASURED:
        return out, tuple(times), cycles, min(times)
    from vta.compiler.tune.measure import simulated_seconds

    return out, tuple(times), cycles, simulated_seconds(rt, program, rt.stats.runs - runs, job.repeats)


def _run_one(job: Job, plugin: DevicePlugin, address: str) -> Measurement:
    kind = MODELED if job.timing_only else plugin.kind
    start = time.perf_counter()
    if isinstance(job.program, ProgramSource):
        try:
            program = job.program.compile()
        except VTAError as e:
            return Measurement(job.key, None, (), None, address, None, kind, f"compile: {e}",
                               time.perf_counter() - start)
    else:
        program = job.program
    compile_s = time.perf_counter() - start
    try:
        if job.timing_only:
            from vta.compiler.tune.measure import model_seconds

            return Measurement(job.key, None, (), None, address, model_seconds(program, **job.model_options), kind,
                               compile_s=compile_s)
        assert plugin.runtime is not None
        out, times, cycles, seconds = _execute(job, program, plugin.runtime, kind)
    except (VTAError, OSError) as e:
        log.warning("fleet job %s failed on %s: %s", job.key, address, e)
        return Measurement(job.key, None, (), None, address, None, kind, str(e), compile_s)
    return Measurement(job.key, out, times, cycles, address, seconds, kind, compile_s=compile_s)


def run_batch(jobs: Sequence[Job]) -> list[Measurement]:
    """Run on a worker: each job of the batch on the worker's device (or its timing model), in order."""
    worker = require_distributed().get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None or plugin.runtime is None:
        raise BackendError(f"fleet worker {worker.address} has no device: start it with `vta fleet worker`")
    return [_run_one(job, plugin, worker.address) for job in jobs]


class Fleet:
    """Submit measurement jobs to the workers of a Dask cluster that carry the ``vta`` resource."""

    def __init__(self, client: Any, cluster: Any = None):
        self.client, self.cluster = client, cluster

    @classmethod
    def local(cls, n_workers: int = 2, mode: str = "sim") -> Fleet:
        """A cluster on this machine (what a laptop gets with no set-up): ``n_workers`` processes of one thread,
        one device each, TLS with a temporary certificate."""
        distributed = require_distributed()
        import dask
        from distributed.security import Security

        security = Security.temporary()
        with dask.config.set(QUIET_CONFIG):  # the nannies hand the configuration to their worker processes
            # the scheduler's HTTP server starts in any case: on a free loopback port, as the rest of the cluster
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               resources=RESOURCE, security=security,
                                               dashboard_address="127.0.0.1:0")
            client = distributed.Client(cluster, security=security)
        client.register_plugin(DevicePlugin(mode))
        return cls(client, cluster)

    @classmethod
    def connect(cls, scheduler: str, tls_ca_file: str, tls_cert: str, tls_key: str,
                timeout_s: float = 30.0) -> Fleet:
        """Attach to a running scheduler with TLS client files, once a worker with a device has joined it."""
        distributed = require_distributed()
        from distributed.security import Security

        security = Security(tls_ca_file=tls_ca_file, tls_client_cert=tls_cert, tls_client_key=tls_key,
                            require_encryption=True)
        try:
            client = distributed.Client(scheduler, security=security, timeout=timeout_s)
        except (OSError, TimeoutError, ValueError) as e:
            raise BackendError(f"fleet: cannot connect to the scheduler {scheduler}: {e}") from None
        fleet = cls(client)
        end = time.monotonic() + timeout_s
        while not fleet.workers():
            if time.monotonic() > end:
                client.close()
                raise BackendError(f"fleet: no worker with a device joined {scheduler} within {timeout_s:g} s: "
                                   "start one with `vta fleet worker`")
            time.sleep(0.1)
        return fleet

    def workers(self) -> list[str]:
        """Addresses of the workers that offer a device."""
        try:
            info = self.client.scheduler_info(n_workers=-1)["workers"]  # all of them, not the first five
        except TypeError:  # an older distributed lists every worker and takes no argument
            info = self.client.scheduler_info()["workers"]
        return sorted(addr for addr, w in info.items() if w.get("resources", {}).get("vta", 0) >= 1)

    def device_kinds(self) -> dict[str, str]:
        """What an executed job's time is on each worker with a device: ``modeled`` or ``measured``."""
        return self.client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].kind,
                               workers=self.workers())

    def measure(self, jobs: Sequence[Job], batch: int | None = None) -> list[Measurement]:
        """One measurement per job, in the jobs' order; a job whose worker died runs again on another, and a job
        that could not run has ``error`` set.

        Jobs go in batches of ``batch`` (default: about ``BATCHES_PER_WORKER`` batches per worker).
        """
        keys = [job.key for job in jobs]
        if len(set(keys)) != len(keys):
            raise BackendError("fleet: job keys must be unique (each job's result is returned exactly once)")
        if not jobs:
            return []
        if batch is None:
            batch = math.ceil(len(jobs) / (max(len(self.workers()), 1) * BATCHES_PER_WORKER))
        elif batch < 1:
            raise BackendError(f"fleet: batch={batch!r}: expected at least 1 job per batch")
        parts = [list(jobs[i:i + batch]) for i in range(0, len(jobs), batch)]
        token = uuid.uuid4().hex[:12]
        futures = self.client.map(run_batch, parts, key=[f"vta-jobs-{token}-{i}" for i in range(len(parts))],
                                  resources=RESOURCE, pure=False)
        done = iter(self.client.gather(futures, errors="skip"))
        results = []
        for part, future in zip(parts, futures):
            if future.status == "finished":
                results += next(done)
                continue
            # the batch itself failed (an unexpected exception, or its workers kept dying): each job says so
            error = f"the fleet could not run it: {type(future.exception()).__name__}: {future.exception()}"
            log.warning("fleet jobs %s: %s", ", ".join(job.key for job in part), error)
            results += [Measurement(job.key, None, (), None, "", None, MODELED if job.timing_only else MEASURED,
                                    error) for job in part]
        return results

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
