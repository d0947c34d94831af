"""The four VTA register windows, mapped by the C driver from a memory device (spec §5.1).

On the board the memory device is /dev/mem; against the emulator it is the emulator's file,
whose byte offsets equal physical addresses, so the same C code runs in both places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vta.driver import _ffi
from vta.errors import DeviceError

__all__ = ["CTRL_BITS", "MODULES", "REG_NAMES", "Mmio", "RunReport", "describe_ctrl"]

MODULES = ("fetch", "load", "compute", "store")
MAP_RANGE = 0x1000  # VTA_IP_REG_MAP_RANGE
# HLS block-level protocol bits of ap_ctrl (offset 0x00).
CTRL_BITS = ((0, "start"), (1, "done"), (2, "idle"), (3, "ready"), (7, "auto_restart"))
REG_NAMES = {
    ("fetch", 0x10): "insn_count", ("fetch", 0x18): "insns",
    ("load", 0x10): "inputs", ("load", 0x18): "weights",
    ("compute", 0x10): "done (write side)", ("compute", 0x18): "done", ("compute", 0x20): "uops",
    ("compute", 0x28): "biases", ("store", 0x10): "outputs",
}
RUN_OK, RUN_TIMEOUT, RUN_BAD_DONE = 0, 1, 2


def describe_ctrl(value: int) -> str:
    """``0x81`` -> ``"0x81 (start, auto_restart)"``: the ap_ctrl bits by name."""
    names = [name for bit, name in CTRL_BITS if value >> bit & 1]
    return f"0x{value:x} ({', '.join(names) if names else 'busy'})"


@dataclass(frozen=True)
class RunReport:
    """What one run call observed: status, the last done value, each module's ap_ctrl, timing."""

    status: int
    done: int
    ctrl: tuple[int, int, int, int]
    polls: int
    elapsed_s: float
    bad_write: tuple[str, int, int, int] | None  # (module, offset, wrote, read back) of an argument register

    def modules_text(self) -> str:
        return "; ".join(f"{m} {describe_ctrl(c)}" for m, c in zip(MODULES, self.ctrl))


class Mmio:
    """Open register windows: read, write and the run sequence, through the C driver."""

    def __init__(self, mem_path: str | os.PathLike[str], bases: tuple[int, int, int, int]):
        if len(bases) != 4:
            raise DeviceError(f"need 4 register bases (fetch, load, compute, store), got {len(bases)}")
        self.mem_path = os.fspath(mem_path)
        self.bases = tuple(int(b) for b in bases)
        mod = _ffi.load()
        self._ffi, self._lib = mod.ffi, mod.lib
        out = self._ffi.new("vta_device **")
        failed = self._ffi.new("const char **")
        c_bases = self._ffi.new("uint64_t[4]", list(self.bases))
        rc = self._lib.vta_device_open(self.mem_path.encode(), c_bases, MAP_RANGE, out, failed)
        if rc < 0:
            func = self._ffi.string(failed[0]).decode()
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

    def run(self, insn_phys: int, insn_count: int, timeout_s: float) -> RunReport:
        """The reference run sequence, polling `done` until the wall-clock deadline."""
        rep = self._ffi.new("vta_run_report *")
        self._lib.vta_device_run(self._handle(), insn_phys, insn_count, timeout_s, rep)
        bad = None
        if rep.bad_module >= 0:
            bad = (MODULES[rep.bad_module], int(rep.bad_offset), int(rep.wrote), int(rep.read_back))
        return RunReport(int(rep.status), int(rep.done), tuple(int(c) for c in rep.ctrl), int(rep.polls),
                         float(rep.elapsed_s), bad)

    def close(self) -> None:
        if self._dev is not None:
            dev, self._dev = self._dev, None
            self._lib.vta_device_close(dev)
