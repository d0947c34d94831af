"""The four VTA register windows, mapped by the C driver from a memory device (spec §5.1).

On the board the memory device is /dev/mem; against the emulator it is the emulator's file,
whose byte offsets equal physical addresses, so the same C code runs in both places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vta.driver import _ffi
from vta.driver.regmap import CTRL_BITS, MAP_RANGE, MODULES, RUN_STATUS
from vta.errors import DeviceError

__all__ = ["RUN_BAD_DONE", "RUN_OK", "RUN_TIMEOUT", "Mmio", "RunReport", "describe_ctrl"]

RUN_OK, RUN_TIMEOUT, RUN_BAD_DONE = RUN_STATUS["OK"], RUN_STATUS["TIMEOUT"], RUN_STATUS["BAD_DONE"]


def describe_ctrl(value: int) -> str:
    """``0x81`` -> ``"0x81 (start, auto_restart)"``: the ap_ctrl bits by name."""
    names = [name for bit, name in CTRL_BITS if value >> bit & 1]
    return f"0x{value:x} ({', '.join(names) if names else 'busy'})"


@dataclass(frozen=True)
class RunReport:
    """What one run call observed: status, the last done value, each module's ap_ctrl, timing.

    ``stale_done`` is what `done` read before the run; ``cleared`` is None when it was already 0
    (or no clearing NOP was given), else whether the clearing NOP brought it to 0.
    """

    status: int
    done: int
    stale_done: int
    cleared: bool | None
    ctrl: tuple[int, int, int, int]
    polls: int
    elapsed_s: float
    bad_write: tuple[str, int, int, int] | None  # (module, offset, wrote, read back) of an argument register

    def modules_text(self) -> str:
        return "; ".join(f"{m} {describe_ctrl(c)}" for m, c in zip(MODULES, self.ctrl))


class Mmio:
    """Open register windows: read, write and the run sequence, through the C driver."""

    def __init__(self, mem_path: str | os.PathLike[str], bases: tuple[int, int, int, int],
                 doorbell: str | os.PathLike[str] | None = None):
        if len(bases) != 4:
            raise DeviceError(f"need 4 register bases (fetch, load, compute, store), got {len(bases)}")
        self.mem_path = os.fspath(mem_path)
        self.bases = tuple(int(b) for b in bases)
        mod = _ffi.load()
        self._ffi, self._lib = mod.ffi, mod.lib
        out = self._ffi.new("vta_device **")
        failed = self._ffi.new("const char **")
        c_bases = self._ffi.new("uint64_t[4]", list(self.bases))
        bell = self._ffi.NULL if doorbell is None else os.fsencode(doorbell)
        rc = self._lib.vta_device_open(self.mem_path.encode(), c_bases, bell, out, failed)
        if rc < 0:
            func = self._ffi.string(failed[0]).decode()
            if func == "open (doorbell)":
                raise DeviceError(f"cannot open the emulator doorbell {os.fspath(doorbell)}: {os.strerror(-rc)}; is "
                                  f"an emulator still serving {self.mem_path}? (vta emulator serve {self.mem_path})")
            _ffi.check(rc, f"vta_device_open: {func}", self.mem_path)
        self._dev = out[0]

    @property
    def closed(self) -> bool:
        return self._dev is None

    def _handle(self) -> object:
        if self._dev is None:
            raise DeviceError(f"register windows of {self.mem_path} are closed")
        return self._dev

    def _module(self, module: str | int) -> int:
        index = MODULES.index(module) if module in MODULES else module
        if not isinstance(index, int) or not 0 <= index < 4:
            raise DeviceError(f"unknown VTA module {module!r}; expected one of {', '.join(MODULES)}")
        return index

    def read(self, module: str | int, offset: int) -> int:
        """One 32-bit register read (volatile, in C)."""
        self._check_offset(offset)
        return int(self._lib.vta_reg_read(self._handle(), self._module(module), offset))

    def write(self, module: str | int, offset: int, value: int) -> None:
        """One 32-bit register write (volatile, in C)."""
        self._check_offset(offset)
        self._lib.vta_reg_write(self._handle(), self._module(module), offset, value & 0xFFFFFFFF)

    @staticmethod
    def _check_offset(offset: int) -> None:
        if not 0 <= offset < MAP_RANGE or offset % 4:
            raise DeviceError(f"register offset 0x{offset:x} is outside the 0x{MAP_RANGE:x}-byte window "
                              "or not 4-byte aligned")

    def run(self, insn_phys: int, insn_count: int, timeout_s: float, clear_phys: int = 0) -> RunReport:
        """The reference run sequence, polling `done` until the wall-clock deadline.

        ``clear_phys`` is the address of one compute NOP that pops nothing: when `done` is not 0
        before the run, it runs first so a stale `done == 1` cannot end this run (vta_driver.c
        explains why). 0 runs the bare reference sequence, which can return early.
        """
        rep = self._ffi.new("vta_run_report *")
        self._lib.vta_device_run(self._handle(), insn_phys, insn_count, clear_phys, timeout_s, rep)
        bad = None
        if rep.bad_module >= 0:
            bad = (MODULES[rep.bad_module], int(rep.bad_offset), int(rep.wrote), int(rep.read_back))
        cleared = None if rep.cleared < 0 else bool(rep.cleared)
        return RunReport(int(rep.status), int(rep.done), int(rep.stale_done), cleared,
                         tuple(int(c) for c in rep.ctrl), int(rep.polls),
                         float(rep.elapsed_s), bad)

    def close(self) -> None:
        if self._dev is not None:
            dev, self._dev = self._dev, None
            self._lib.vta_device_close(dev)
