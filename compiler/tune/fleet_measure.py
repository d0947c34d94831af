"""The fleet measurer: a batch of configurations measured in parallel on the workers of a Dask fleet.

Each configuration travels as data (the task, its index and the compile environment) and is
compiled on the worker that measures it, so compiling runs in parallel too and no program crosses
the wire. Timing-only (the default) gives the performance model's time, as ``ModelMeasurer`` does;
executing runs the program on the worker's device with inputs drawn here, and the output is
checked here against numpy: a wrong output is an error, never a time. A worker that dies has its
configurations measured again on another worker (Dask reschedules them); every failure is the
error of its own configuration. With no scheduler, a local cluster of simulator workers is started.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vta.compiler.ops.common import ScheduledOp
from vta.compiler.program import Program
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.measure import Measurer, MeasureResult
from vta.compiler.tune.task import Task
from vta.config import Environment, get_env
from vta.errors import VTAError
from vta.runtime.fleet import MODELED, Fleet, Job, Measurement

__all__ = ["FleetMeasurer", "TaskConfig"]

LOCAL_WORKERS_MAX = 4  # the tuner measures 4 configurations per round by default (vta tune --batch)


@dataclass(frozen=True)
class TaskConfig:
    """One configuration of a tuning task, compiled by the worker that measures it (under ``env``)."""

    task: Task
    index: int
    env: Environment

    def compile(self) -> Program:
        with self.env:
            return self.task.build(self.index)[1]


class FleetMeasurer(Measurer):
    """Measure each batch of configurations in parallel on a fleet: timing-only, or executed and checked."""

    name = "fleet"
    kind = MODELED

    def __init__(self, execute: bool = False, scheduler: str | None = None, tls_ca_file: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, workers: int | None = None,
                 fleet: Fleet | None = None, seed: int = 0, repeat: int = 1, **model_options: Any):
        if repeat < 1:
            raise TuneError(f"fleet measurer: repeat={repeat!r}: expected at least 1 run")
        tls = (tls_ca_file, tls_cert, tls_key)
        if scheduler is None and any(tls):
            raise TuneError("fleet measurer: --tls-ca-file, --tls-cert and --tls-key go with --scheduler")
        if scheduler is not None and not all(tls):
            raise TuneError(f"fleet measurer: the scheduler {scheduler} needs --tls-ca-file, --tls-cert and "
                            "--tls-key (the cluster admits only holders of its certificates)")
        self.execute, self.scheduler, self.tls = execute, scheduler, tls
        self.n_workers = workers or min(os.cpu_count() or 1, LOCAL_WORKERS_MAX)
        self.seed, self.repeat, self.model_options = seed, repeat, model_options
        self._fleet, self._own = fleet, fleet is None
        self._references: dict[tuple, tuple[list[np.ndarray], np.ndarray]] = {}

    def open(self) -> None:
        """Attach to the scheduler (or start the local cluster) and learn what the workers' times are."""
        if self._fleet is None:
            if self.scheduler is None:
                self._fleet = Fleet.local(self.n_workers, "sim")
            else:
                self._fleet = Fleet.connect(self.scheduler, *self.tls)  # type: ignore[arg-type]
        if self.execute:
            kinds = set(self._fleet.device_kinds().values())
            if len(kinds) > 1:
                raise TuneError("fleet measurer: the fleet mixes simulator workers (modeled times) and boards "
                                "(measured times), which cannot be compared; tune on one kind of worker")
            self.kind = kinds.pop() if kinds else MODELED

    def close(self) -> None:
        if self._fleet is not None and self._own:
            self._fleet.close()
            self._fleet = None

    def measure(self, task: Task, indices: Sequence[int]) -> list[MeasureResult]:
        """One result per index, in order: all of them measured at once, spread over the workers."""
        self.open()
        assert self._fleet is not None
        env = get_env()
        results: dict[int, MeasureResult] = {}
        jobs, wants = [], {}
        for pos, index in enumerate(int(i) for i in indices):
            config, key = TaskConfig(task, index, env), f"{task.name}-{index}-{pos}"
            if not self.execute:
                jobs.append(Job.timing(key, config, **self.model_options))
                continue
            try:
                inputs, want = self._reference(task, task.operator(index))
            except VTAError as e:
                results[pos] = MeasureResult(index, None, f"compile: {e}")
                continue
            wants[key] = want
            jobs.append(Job(key, config, tuple(inputs), want.shape, str(want.dtype), repeats=self.repeat))
        positions = [pos for pos in range(len(indices)) if pos not in results]
        for pos, m in zip(positions, self._fleet.measure(jobs)):
            results[pos] = self._result(task, int(indices[pos]), m, wants.get(m.key))
        return [results[pos] for pos in range(len(indices))]

    def _reference(self, task: Task, op: ScheduledOp) -> tuple[list[np.ndarray], np.ndarray]:
        """Random inputs of the task's operator and numpy's output for them, drawn once per task and input shape."""
        key = (task.space.task, task.space.workload, task.epilogue, tuple(t.shape for t in op.inputs))
        if key not in self._references:
            inputs = op.random_inputs(np.random.default_rng(self.seed))
            self._references[key] = inputs, op.reference(*inputs)
        return self._references[key]

    def _result(self, task: Task, index: int, m: Measurement, want: np.ndarray | None) -> MeasureResult:
        if not m.ok:
            error = m.error if m.error.startswith("compile: ") else f"{self.name}: {m.error} (worker {m.worker})"
            return MeasureResult(index, None, error, m.compile_s)
        if m.kind != self.kind:
            return MeasureResult(index, None, f"{self.name}: worker {m.worker} gave a {m.kind} time where this "
                                              f"measurer's times are {self.kind}", m.compile_s)
        if want is not None and not np.array_equal(m.output, want):
            bad = int((m.output != want).sum())
            return MeasureResult(index, None, f"{self.name}: wrong output: {bad} of {want.size} elements differ "
                                              f"from numpy (worker {m.worker})", m.compile_s)
        return MeasureResult(index, m.seconds, None, m.compile_s)

    def _time(self, task: Task, op: ScheduledOp, program: Program) -> float:
        raise TuneError("the fleet measurer measures batches on its workers, not one program here")

