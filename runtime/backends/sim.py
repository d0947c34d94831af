"""The ``sim`` backend: the runtime on the bit-exact simulator, in this process.

Buffers come from one simulated :class:`~vta.sim.dram.Dram` and every run goes to one
:class:`~vta.sim.device.SimDevice` over it, so SRAM contents persist between runs as on the
board (spec §3.8). The simulator cannot hang (it refuses deadlocks), so the timeout bounds nothing.
Each run's predicted Pynq-Z1 timing (:mod:`vta.sim.perf`) is computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from vta.config import Environment, get_env
from vta.runtime.backend import Backend
from vta.sim.device import COUNTER_NAMES, RunResult, SimDevice
from vta.sim.dram import Dram, DramBuffer
from vta.sim.perf import Timing

__all__ = ["SimBackend"]


class SimBackend(Backend):
    """The simulator as a device: buffers from its DRAM, runs on its SimDevice.

    Example
    -------
    >>> backend = SimBackend()
    >>> buf = backend.alloc(4096)
    >>> backend.phys(buf)
    4096
    """

    name = "sim"
    capabilities = frozenset({"counters", "fixed_address", "timing"})

    def __init__(self, env: Environment | None = None):
        super().__init__()
        self.env = env or get_env()
        self.dram = Dram()
        self.device = SimDevice(self.env, self.dram)
        self._last = dict.fromkeys(COUNTER_NAMES, 0)
        self._result: RunResult | None = None

    def _alloc(self, nbytes: int) -> DramBuffer:
        return self.dram.alloc(nbytes)

    def _alloc_at(self, phys_addr: int, nbytes: int) -> DramBuffer:
        return self.dram.alloc_at(phys_addr, nbytes)

    def _free(self, buf: DramBuffer) -> None:
        self.dram.free(buf)

    def _phys(self, buf: DramBuffer) -> int:
        return buf.phys_addr

    def _view(self, buf: DramBuffer) -> np.ndarray:
        return buf.data

    def _copy_in(self, buf: DramBuffer, offset: int, data: np.ndarray) -> None:
        buf.data[offset:offset + len(data)] = data

    def _copy_out(self, buf: DramBuffer, offset: int, nbytes: int) -> np.ndarray:
        return buf.data[offset:offset + nbytes].copy()

    def _run(self, insn_phys: int, insn_count: int, timeout_s: float) -> Mapping[str, int]:
        # SRAM persists between runs as on the board; the verifier already decided what may be read.
        self._result = self.device.run(insn_phys, insn_count, carry_sram=True)
        self._last = self._result.counters
        return self._last

    def _predictor(self) -> Callable[[], Timing]:
        result = self._result  # RunResult.timing is computed on first access and then kept
        return lambda: result.timing

    def _counters(self) -> Mapping[str, int]:
        return self._last

    def _reset(self) -> None:
        self.device = SimDevice(self.env, self.dram)
        self._last = dict.fromkeys(COUNTER_NAMES, 0)
