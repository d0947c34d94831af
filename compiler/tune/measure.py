"""Measurers behind one interface: the performance model, the functional simulator, a board, a remote board.

A measurement compiles one configuration and times it. Whatever goes wrong (a compile error, a
refused stream, a device failure, an output that differs from numpy) is recorded as the
result's ``error``, never as a time, so a search can neither pick nor learn from it as if it ran.
The model and the simulator give *modeled* Pynq-Z1 times; only a board measures: ``board``
(the ``pynq`` backend here) by the host's wall time, ``rpc`` (a board behind ``vta rpc serve``)
by the device time the server measured, so the network round trip is never counted.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vta.compiler.ops.common import ScheduledOp
from vta.compiler.program import Program
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.task import Task
from vta.errors import VTAError

__all__ = ["MEASURERS", "BoardMeasurer", "MeasureResult", "Measurer", "ModelMeasurer", "RpcMeasurer", "SimMeasurer",
           "create_measurer", "model_seconds", "simulated_seconds"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureResult:
    """One configuration's outcome: seconds per run (None when ``error`` says why it has none)."""

    index: int
    seconds: float | None
    error: str | None = None
    compile_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def gops(self, ops: int) -> float:
        """Throughput for a task of ``ops`` operations (0 for an error)."""
        return ops / self.seconds / 1e9 if self.ok and self.seconds else 0.0


def model_seconds(program: Program, **model_options: Any) -> float:
    """The performance model's time for ``program``: every device run it makes, back to back, not executed.

    The one adapter between the tuner and :func:`vta.sim.perf.estimate`; ``model_options`` (e.g.
    a calibrated hardware profile) are passed to it unchanged.
    """
    from vta.sim.perf import estimate
    from vta.sim.predict import program_streams

    return sum(estimate(s, program.env, **model_options).seconds for s in program_streams(program))


def simulated_seconds(rt: Any, program: Program, device_runs: int, program_runs: int = 1) -> float:
    """The modeled time of one run of ``program``, which just ran ``program_runs`` times on the simulator ``rt``.

    One device run per program run: that run's timing. A program that auto-flushed made several
    device runs per call, and the model times them all, back to back.
    """
    if device_runs == program_runs:
        return rt.last_timing().seconds
    return model_seconds(program)


class Measurer(ABC):
    """Compile and time configurations of a task; ``kind`` says what the times are (modeled or measured)."""

    name: str
    kind: str

    def measure(self, task: Task, indices: Sequence[int]) -> list[MeasureResult]:
        """One result per index, in order; failures are results with an error."""
        return [self._one(task, int(i)) for i in indices]

    def _one(self, task: Task, index: int) -> MeasureResult:
        start = time.perf_counter()
        try:
            op, prog = task.build(index)
        except VTAError as e:
            return MeasureResult(index, None, f"compile: {e}", time.perf_counter() - start)
        compiled = time.perf_counter() - start
        try:
            seconds = self._time(task, op, prog)
        except (VTAError, OSError) as e:
            log.warning("%s: configuration %d failed on the %s measurer: %s", task.name, index, self.name, e)
            return MeasureResult(index, None, f"{self.name}: {e}", compiled)
        return MeasureResult(index, seconds, None, compiled)

    @abstractmethod
    def _time(self, task: Task, op: ScheduledOp, program: Program) -> float:
        """Seconds per run of ``program``; raise VTAError (e.g. TuneError for a wrong output) on failure."""

    def open(self) -> None:  # noqa: B027 - most measurers hold nothing
        """Acquire the device now, so a board that cannot be opened is an error before any trial."""

    def close(self) -> None:  # noqa: B027 - most measurers hold nothing
        """Release what the measurer holds (a runtime, a device)."""


class ModelMeasurer(Measurer):
    """The performance model on the instruction stream (timing only, nothing executed); results memoized."""

    name, kind = "model", "modeled"

    def __init__(self, **model_options: Any):
        self.model_options = model_options
        self._memo: dict[tuple, MeasureResult] = {}

    def preload(self, task: Task, seconds: Mapping[int, float | None], errors: Mapping[int, str] | None = None) -> None:
        """Take earlier model times of ``task`` (e.g. an exhaustive run saved as JSON) instead of recomputing them."""
        for index, sec in seconds.items():
            err = (errors or {}).get(index, "model: no time recorded") if sec is None else None
            self._memo[(task.space.task, task.space.workload, task.epilogue, int(index))] = \
                MeasureResult(int(index), sec, err)

    def _one(self, task: Task, index: int) -> MeasureResult:
        key = (task.space.task, task.space.workload, task.epilogue, index)
        if key not in self._memo:
            self._memo[key] = super()._one(task, index)
        return self._memo[key]

    def _time(self, task: Task, op: ScheduledOp, program: Program) -> float:
        return model_seconds(program, **self.model_options)


class _Executing(Measurer):
    """Run on a runtime backend with random inputs and compare the output with numpy."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self._rt: Any = None

    def _runtime(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        if self._rt is None:
            self._rt = self._runtime()

    def _time(self, task: Task, op: ScheduledOp, program: Program) -> float:
        self.open()
        inputs = op.random_inputs(self.rng)
        out = op.empty_output()
        seconds = self._run(program, inputs, out)
        want = op.reference(*inputs)
        if not np.array_equal(out, want):
            bad = int((out != want).sum())
            raise TuneError(f"wrong output: {bad} of {out.size} elements differ from numpy")
        return seconds

    @abstractmethod
    def _run(self, program: Program, inputs: list[np.ndarray], out: np.ndarray) -> float: ...

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()
            self._rt = None


class SimMeasurer(_Executing):
    """The bit-exact simulator: the model's time of the stream that ran, and the output checked."""

    name, kind = "sim", "modeled"

    def _runtime(self) -> Any:
        from vta.runtime import Runtime

        return Runtime("sim")

    def _run(self, program: Program, inputs: list[np.ndarray], out: np.ndarray) -> float:
        before = self._rt.stats.runs
        program.run(*inputs, out, runtime=self._rt)
        return simulated_seconds(self._rt, program, self._rt.stats.runs - before)


class BoardMeasurer(_Executing):
    """A board through the ``pynq`` backend (or its emulator): the best wall time of ``repeat`` device runs."""

    name, kind = "board", "measured"

    def __init__(self, seed: int = 0, repeat: int = 3, **backend_options: Any):
        super().__init__(seed)
        if repeat < 1:
            raise TuneError(f"{self.name} measurer: repeat={repeat!r}: expected at least 1 run")
        self.repeat = repeat
        self.backend_options = backend_options

    def _runtime(self) -> Any:
        from vta.runtime import Runtime

        return Runtime("pynq", **self.backend_options)

    def _run(self, program: Program, inputs: list[np.ndarray], out: np.ndarray) -> float:
        best = float("inf")
        for _ in range(self.repeat):
            info = program.run(*inputs, out, runtime=self._rt)
            best = min(best, info.wall_s)
        return best


class RpcMeasurer(BoardMeasurer):
    """A board served by ``vta rpc serve`` (or its emulator): the best server-measured device time of ``repeat`` runs.

    The host's wall time would add the network round trip, the transfers and the server's
    verification; the server times the device run alone and sends it with each run reply. A
    server of the simulator (``--sim``) is refused: its run time is the simulator's, not a board's.
    """

    name, kind = "rpc", "measured on the served board"

    def __init__(self, url: str | None = None, seed: int = 0, repeat: int = 3, **backend_options: Any):
        if not url:
            raise TuneError("rpc measurer: give the server's url, e.g. tcp+tls://HOST:PORT or ssh://USER@HOST")
        super().__init__(seed, repeat, url=url, **backend_options)

    def _runtime(self) -> Any:
        from vta.runtime import Runtime

        rt = Runtime("rpc", **self.backend_options)
        served = rt.backend.info.get("backend")
        if served != "pynq":
            url = rt.backend.url
            rt.close()
            raise TuneError(f"rpc measurer: the server at {url} serves the {served} backend, whose run times are "
                            "not a board's; serve a board (vta rpc serve, or --emulate), or use --measurer sim")
        return rt

    def _run(self, program: Program, inputs: list[np.ndarray], out: np.ndarray) -> float:
        backend = self._rt.backend
        best = float("inf")
        for _ in range(self.repeat):
            before = backend.device_s
            program.run(*inputs, out, runtime=self._rt)
            best = min(best, backend.device_s - before)  # every device run of the program, as the server timed it
        return best


def _fleet_measurer(**options: Any) -> Measurer:
    """The fleet measurer (:mod:`.fleet_measure`), imported when asked for: it needs Dask distributed."""
    from vta.compiler.tune.fleet_measure import FleetMeasurer

    return FleetMeasurer(**options)


# name -> measurer class (or factory); ``create_measurer`` passes its options to it.
MEASURERS: dict[str, Callable[..., Measurer]] = {"model": ModelMeasurer, "sim": SimMeasurer, "board": BoardMeasurer,
                                                 "rpc": RpcMeasurer, "fleet": _fleet_measurer}


def create_measurer(name: str, **options: Any) -> Measurer:
    """A measurer by name: ``model``, ``sim``, ``board`` (the ``pynq`` backend), ``rpc`` (``url=...``) or ``fleet``."""
    if name == "pynq":
        name = "board"
    if name not in MEASURERS:
        raise TuneError(f"unknown measurer {name!r}; measurers: {', '.join(MEASURERS)} (board is the pynq backend)")
    return MEASURERS[name](**options)
