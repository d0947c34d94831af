"""The board device: one owner, DMA buffers, runs with a wall-clock deadline, and recovery.

A run that misses its deadline leaves stale dependency tokens in the hardware FIFOs (nothing
resets them between runs, spec §3.7), so the only way back to a usable device is to re-program
the bitstream. :meth:`BoardDevice.run` does that before raising, then calls the reset hooks (the
runtime drops its queued state), so the error says what happened and the next run works.

On a Pynq board the order is PYNQ's: the bitstream is loaded (under the device lock) before the
first buffer is allocated, and a re-programming frees the live buffers first and restores them
afterwards (:meth:`PynqAllocator.reprogram`).
A run is never ended by the previous run's `done`: the driver first clears a stale one with a
one-NOP run (why: vta_driver.c, docs/board.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vta.config import Environment, get_env
from vta.driver.buffers import CacheStats, DmaBuffer, FileAllocator, PynqAllocator
from vta.driver.lock import DeviceLock, command_line
from vta.driver.mmio import RUN_BAD_DONE, RUN_OK, RUN_TIMEOUT, Mmio, RunReport
from vta.driver.regmap import DONE_RD, MODULES, REG_NAMES
from vta.errors import DeviceError, DeviceTimeout, DeviceUnrecoverable, VTAError
from vta.isa import MEM_UOP, MemInsn, encode_insn

if TYPE_CHECKING:
    from vta.bitstream.manifest import BitstreamRecord
    from vta.driver.emulated import EmulatedBoard

__all__ = ["DEFAULT_TIMEOUT_S", "BoardDevice", "program_bitstream"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# The compute NOP the driver runs to clear a stale `done` (vta_driver.c, vta_device_run): a LOAD UOP of
# x_size 0 with no dependency flags, which HLS compute executes at once, writing done = 0.
CLEAR_DONE_NOP = encode_insn(MemInsn(memory_type=MEM_UOP))


def program_bitstream(path: str | os.PathLike[str] | None, env: Environment, lock: DeviceLock, *,
                      expected: BitstreamRecord | None = None) -> Callable[[], str]:
    """A (re-)programming action through :mod:`vta.bitstream`, under ``lock``, which the device holds."""

    def reprogram() -> str:
        from vta.bitstream.program import program

        return f"FPGA programmed with {program(path, env, expected=expected, lock=lock)}"

    return reprogram


class BoardDevice:
    """Owns one VTA device (a Pynq board or an emulated one) for this process.

    Example
    -------
    >>> with EmulatedBoard.start() as board, BoardDevice.open_emulated(board) as dev:  # doctest: +SKIP
    ...     buf = dev.alloc(4096)            # write instructions into buf.array, then
    ...     dev.run(buf.phys_addr, count)    # raises DeviceTimeout after recovering
    """

    def __init__(self, mem_path: str | os.PathLike[str], bases: tuple[int, int, int, int],
                 allocator: Callable[[], PynqAllocator | FileAllocator], reprogram: Callable[[], str], *,
                 lock_path: str | os.PathLike[str] | DeviceLock | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, diagnose: Callable[[], list[str]] | None = None,
                 doorbell: str | os.PathLike[str] | None = None):
        self.mem_path = os.fspath(mem_path)
        self.timeout_s = _positive(timeout_s)
        self.lock = lock_path if isinstance(lock_path, DeviceLock) else DeviceLock(lock_path)
        self.lock.acquire(f"VTA device {self.mem_path}")
        try:
            self.mmio = Mmio(self.mem_path, bases, doorbell)
            self.allocator = allocator()
        except BaseException:
            self.lock.release()
            raise
        self._reprogram = reprogram
        self._diagnose = diagnose
        self._reset_hooks: list[Callable[[], None]] = []
        self._clear_nop: DmaBuffer | None = None
        self.recoveries = 0
        self.programmed: str | None = None  # what open_board programmed

    @classmethod
    def open_board(cls, env: Environment | None = None, *, bitstream: str | os.PathLike[str] | None = None,
                   mem_path: str = "/dev/mem", lock_path: str | os.PathLike[str] | None = None,
                   timeout_s: float = DEFAULT_TIMEOUT_S, program: bool = True,
                   expected: BitstreamRecord | None = None, coherent: bool = True) -> BoardDevice:
        """The Pynq board: registers through /dev/mem, buffers from pynq.allocate, recovery by re-programming.

        With ``program`` (the default) the FPGA is programmed before anything is allocated, as
        PYNQ requires; ``program=False`` trusts a bitstream loaded earlier (``vta program``).
        ``coherent``: the bitstream's DMA goes through the ACP port, so no cache maintenance (buffers.py).
        """
        from vta.bitstream.program import require_pynq_target

        env = env or get_env()
        require_pynq_target(env)
        lock = DeviceLock(lock_path)
        dev = cls(mem_path, env.IP_BASES, lambda: PynqAllocator(coherent),
                  program_bitstream(bitstream, env, lock, expected=expected), lock_path=lock, timeout_s=timeout_s)
        if program:
            try:
                lock.describe(f"programming the FPGA for {env.MODEL}")
                dev.programmed = dev._reprogram()
                lock.describe(command_line())
            except BaseException:
                dev.close()
                raise
        return dev

    @classmethod
    def open_emulated(cls, board: EmulatedBoard, *, lock_path: str | os.PathLike[str] | None = None,
                      timeout_s: float = DEFAULT_TIMEOUT_S, pool_base: int = 0x18000000,
                      pool_bytes: int = 128 << 20, coherent: bool = True) -> BoardDevice:
        """An emulated board: the same C driver on the emulator's file, buffers from its DRAM pool.

        ``coherent=False`` emulates a design without the ACP port: buffers count the cache maintenance
        such a board would need (``cache_stats``).
        """
        lock = lock_path if lock_path is not None else Path(f"{board.path}.lock")
        board.events()  # what happened before this owner is not this owner's business
        return cls(board.path, board.bases, lambda: FileAllocator(board.path, pool_base, pool_bytes, coherent),
                   board.reset, lock_path=lock, timeout_s=timeout_s, diagnose=board.events, doorbell=board.doorbell)

    # --- buffers and hooks ----------------------------------------------------------------
    def alloc(self, nbytes: int) -> DmaBuffer:
        """A physically contiguous, device-visible buffer of ``nbytes``."""
        self._open()
        return self.allocator.alloc(nbytes)

    @property
    def cache_stats(self) -> CacheStats:
        """Bytes flushed and invalidated on this device's buffers so far (0 while coherent)."""
        return self.allocator.cache

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every recovery, so owners of queued device state can drop it."""
        self._reset_hooks.append(hook)

    def _open(self) -> None:
        if self.mmio.closed:
            raise DeviceError(f"VTA device {self.mem_path} is closed")

    # --- running --------------------------------------------------------------------------
    def run(self, insn_phys: int, insn_count: int, timeout_s: float | None = None) -> RunReport:
        """Run ``insn_count`` instructions at ``insn_phys`` until FINISH or the wall-clock deadline.

        Raises DeviceTimeout (deadline missed) or DeviceError (impossible ``done`` value); in both
        cases the device has been re-programmed and the reset hooks have run.
        """
        self._open()
        timeout_s = self.timeout_s if timeout_s is None else _positive(timeout_s)
        if not 0 < insn_phys < 1 << 32 or insn_phys % 16:
            raise DeviceError(f"instruction address 0x{insn_phys:x} must be a 16-byte aligned 32-bit address")
        if not 0 < insn_count < 1 << 32:
            raise DeviceError(f"instruction count must be in 1..2^32-1, got {insn_count}")
        report = self.mmio.run(insn_phys, insn_count, timeout_s, self._clear_phys())
        if report.status == RUN_OK:
            return report
        what = f"VTA run of {insn_count} instruction(s) at 0x{insn_phys:x} on {self.mem_path}"
        done_at = f"compute done register (0x{self.mmio.bases[2] + DONE_RD:08x})"
        if report.cleared is False:
            what = f"the NOP run that clears the previous run's done (0x{report.stale_done:x}) before the {what}"
        if report.status == RUN_TIMEOUT:
            detail = (f"{what} did not finish within {timeout_s:g} s: {done_at} still read {report.done} after "
                      f"{report.polls} polls; modules: {report.modules_text()}{self._bad_write(report)}")
        elif report.status == RUN_BAD_DONE:
            detail = (f"{what} failed: {done_at} read 0x{report.done:x} after {report.elapsed_s:.3g} s, expected 0 "
                      f"or 1 (is the FPGA programmed with the VTA bitstream?); modules: {report.modules_text()}")
        else:
            detail = f"{what} returned unknown status {report.status} from vta_device_run"
        detail += self._diagnosis()
        logger.warning("%s; recovering", detail)
        recovered = self.recover(detail)
        cls = DeviceTimeout if report.status == RUN_TIMEOUT else DeviceError
        raise cls(f"{detail}. Recovered: {recovered}; the next run starts on a clean device")

    def _clear_phys(self) -> int:
        """Address of the done-clearing NOP, written once into a buffer of this device's allocator."""
        if self._clear_nop is None or not self._clear_nop.alive:
            buf = self.allocator.alloc(len(CLEAR_DONE_NOP))
            buf.array[:] = np.frombuffer(CLEAR_DONE_NOP, np.uint8)
            buf.flush()
            self._clear_nop = buf
        return self._clear_nop.phys_addr

    def _bad_write(self, report: RunReport) -> str:
        if report.bad_write is None:
            return ""
        module, offset, wrote, got = report.bad_write
        base = self.mmio.bases[MODULES.index(module)]
        return (f"; {module} {REG_NAMES[(module, offset)]} register (0x{base + offset:08x}) reads 0x{got:x} after "
                f"the driver wrote 0x{wrote:x}: the write was not accepted")

    def _diagnosis(self) -> str:
        lines = self._diagnose() if self._diagnose is not None else []
        return f"; emulator reports: {' | '.join(lines)}" if lines else ""

    def recover(self, reason: str = "requested") -> str:
        """Re-program the device and run the reset hooks; DeviceUnrecoverable if that fails too.

        Live pynq buffers are freed around the programming and restored at their addresses with
        their contents; one that cannot get its address back is lost (its uses raise saying so).
        """
        logger.info("recovering VTA device %s: %s", self.mem_path, reason)
        lost: list[DmaBuffer] = []
        try:
            if isinstance(self.allocator, PynqAllocator):
                done, lost = self.allocator.reprogram(self._reprogram, reason)
            else:
                done = self._reprogram()
        except VTAError as e:
            logger.error("recovery of VTA device %s failed: %s", self.mem_path, e)
            raise DeviceUnrecoverable(f"{reason}. Recovery failed: {e}; re-program the board (`vta program`) "
                              "before the next run") from e
        self.recoveries += 1
        for hook in self._reset_hooks:
            hook()
        if lost:
            addresses = ", ".join(f"0x{b.phys_addr:x}" for b in lost)
            done += f"; {len(lost)} buffer(s) could not get their physical address back and were lost: {addresses}"
            logger.warning("recovery lost %d DMA buffer(s): %s", len(lost), addresses)
        logger.info("VTA device %s recovered (%s): %s", self.mem_path, reason, done)
        return done

    def close(self) -> None:
        """Unmap the registers, release the pool and the lock (idempotent)."""
        if not self.mmio.closed:
            self.mmio.close()
            self.allocator.close()
        self.lock.release()

    def __enter__(self) -> BoardDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _positive(timeout_s: float) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise DeviceError(f"a run timeout must be a positive number of seconds, got {timeout_s!r}")
    return float(timeout_s)
