"""The program verifier: the simulator's checks, run before every launch on every backend.

The verifier keeps its own :class:`~vta.sim.dram.Dram` made of *views* of the runtime's live
buffers (``Dram.adopt``, no copies) and runs the stream on a private
:class:`~vta.sim.device.SimDevice` with ``execute=False``: field checks, every DMA range inside
a live buffer of this runtime, SRAM indices and loop extents, token balance (no deadlock,
nothing left over), races, and FINISH last. Only micro-ops move (the checks need them). A
verified stream is cached by the simulator, so repeating it costs a lookup. On the board this
is the only thing between a wrong physical address and the kernel's memory.
"""

from __future__ import annotations

import numpy as np

from vta.config import Environment
from vta.sim.device import SimDevice
from vta.sim.dram import Dram, DramBuffer

__all__ = ["Verifier"]


class Verifier:
    """Checks instruction streams against the runtime's own buffers; raises ProgramError subclasses."""

    def __init__(self, env: Environment):
        self.env = env
        self.dram = Dram()
        self.device = SimDevice(env, self.dram)
        self._blocks: dict[int, DramBuffer] = {}

    def track(self, phys_addr: int, view: np.ndarray) -> None:
        """Let programs use the bytes ``view`` (a live buffer of this runtime) at ``phys_addr``."""
        self._blocks[phys_addr] = self.dram.adopt(phys_addr, view)

    def untrack(self, phys_addr: int) -> None:
        """The buffer at ``phys_addr`` was freed (or lost in a reset): any DMA into it is now out of bounds."""
        block = self._blocks.pop(phys_addr, None)
        if block is not None:
            self.dram.free(block)

    def verify(self, insn_phys: int, insn_count: int, continued: bool = False) -> None:
        """Raise the ProgramError naming the first defect of the stream, or return if it may run.

        A continuation of an auto-flushed program may read SRAM that the runs verified before it
        wrote (the hardware keeps it); nothing else it reads may be unwritten.
        """
        self.device.run(insn_phys, insn_count, execute=False, carry_sram=continued)
