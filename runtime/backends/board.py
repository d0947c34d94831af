"""The ``pynq`` backend: the runtime on a Pynq-Z1 (or an emulated one) through the cffi driver.

Buffers are physically contiguous DMA buffers (``pynq.allocate`` on the board, the emulator's
DRAM pool otherwise); a run is the register sequence of spec §5.1 with a wall-clock deadline.
Copies maintain the cache for exactly the bytes they touch, and not at all on the coherent ACP
port of the Pynq bitstream (``coherent=True``, the default; see :mod:`vta.driver.buffers`).
After a timeout the driver has already re-programmed the device; this backend then drops its
own per-run state through the reset hooks, so the error is final and the next run works.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from vta.bitstream.manifest import BitstreamRecord
from vta.config import Environment, get_env
from vta.driver.buffers import DmaBuffer
from vta.driver.device import DEFAULT_TIMEOUT_S, BoardDevice
from vta.driver.emulated import EmulatedBoard
from vta.runtime.backend import Backend

__all__ = ["BoardBackend"]


class BoardBackend(Backend):
    """The Pynq board (``emulator=None``) or a served board emulator (a file path or an EmulatedBoard).

    On the board the FPGA is programmed when the backend opens, before the runtime allocates
    (``program=False`` keeps a bitstream loaded earlier with ``vta program``).
    """

    name = "pynq"
    capabilities = frozenset({"dma", "timeout", "recovery", "bitstream"})

    def __init__(self, env: Environment | None = None, *,
                 emulator: str | os.PathLike[str] | EmulatedBoard | None = None,
                 bitstream: str | os.PathLike[str] | None = None, mem_path: str = "/dev/mem",
                 lock_path: str | os.PathLike[str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 program: bool = True, expected: BitstreamRecord | None = None, coherent: bool = True):
        super().__init__()
        self.env = env or get_env()
        if emulator is None:
            # programs the FPGA first: PYNQ allocates only under a loaded bitstream
            self.device = BoardDevice.open_board(self.env, bitstream=bitstream, mem_path=mem_path,
                                                 lock_path=lock_path, timeout_s=timeout_s, program=program,
                                                 expected=expected, coherent=coherent)
        else:
            board = emulator if isinstance(emulator, EmulatedBoard) else EmulatedBoard.connect(emulator)
            self.device = BoardDevice.open_emulated(board, timeout_s=timeout_s, coherent=coherent)
            self.capabilities = self.capabilities | {"fixed_address"}  # the emulator maps any address
        self.default_timeout_s = timeout_s

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Let the runtime drop its queued state whenever the device is re-programmed (also after a timeout)."""
        self.device.on_reset(hook)

    # --- hooks behind the Backend interface -----------------------------------------------
    def _alloc(self, nbytes: int) -> DmaBuffer:
        return self.device.alloc(nbytes)

    def _alloc_at(self, phys_addr: int, nbytes: int) -> DmaBuffer:
        return self.device.allocator.at(phys_addr, nbytes)

    def _free(self, buf: DmaBuffer) -> None:
        buf.free()

    def _phys(self, buf: DmaBuffer) -> int:
        return buf.phys_addr

    def _view(self, buf: DmaBuffer) -> np.ndarray:
        return buf.array

    def _flush(self, buf: DmaBuffer) -> None:
        buf.flush()

    def _invalidate(self, buf: DmaBuffer) -> None:
        buf.invalidate()

    def _copy_in(self, buf: DmaBuffer, offset: int, data: np.ndarray) -> None:
        buf.array[offset:offset + len(data)] = data
        buf.flush(offset, len(data))  # only the bytes written; a no-op on the coherent ACP port

    def _copy_out(self, buf: DmaBuffer, offset: int, nbytes: int) -> np.ndarray:
        buf.invalidate(offset, nbytes)  # only the bytes read; a no-op on the coherent ACP port
        return buf.array[offset:offset + nbytes].copy()

    def _run(self, insn_phys: int, insn_count: int, timeout_s: float | None) -> None:
        self.device.run(insn_phys, insn_count, timeout_s)

    def _reset(self) -> None:
        self.device.recover("reset requested")

    def _close(self) -> None:
        self.device.close()
