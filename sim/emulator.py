"""Register-level Pynq board emulator: the VTA IP register windows and DRAM in one shared file.

Byte ``a`` of the file is physical address ``a`` (a sparse 4 GiB file), so the board driver's
C code maps it exactly as it maps /dev/mem. A serving process polls the four register windows,
follows the HLS ap_ctrl protocol the way the bitstream does (start, auto-restart 0x81, compute
``done`` at 0x18), runs the latched instruction stream with :class:`SimDevice` over the file's
DRAM, and writes ``done``. It also checks the driver's register protocol: every deviation (a start
before the arguments were written, nonzero data base registers, writes the hardware would drop)
is logged, and a run the hardware could not have completed hangs, as it would on the board.

The page after the 4 GiB address space is the emulator's own control block (no physical address
reaches it): liveness, reset ("re-program") and fault-injection requests, counters.
Polling has a granularity of ``poll_s``: a write made and undone between two polls is not seen.
Argument registers are set to ``POISON`` after each run and at reset (real hardware keeps the old
values) so that a run started without rewriting them is detected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from vta.config import Environment, get_env
from vta.errors import VTAError
from vta.sim.device import SimDevice
from vta.sim.dram import PAGE_BYTES, Dram

__all__ = ["ADDRESS_SPACE", "FAULTS", "FILE_BYTES", "POISON", "Control", "Emulator", "main"]

ADDRESS_SPACE = 1 << 32
CONTROL_OFFSET = ADDRESS_SPACE
CONTROL_BYTES = PAGE_BYTES
FILE_BYTES = ADDRESS_SPACE + CONTROL_BYTES
MAGIC = int.from_bytes(b"VTAEMU01", "little")
POISON = 0xBAD0C0DE
MODULES = ("fetch", "load", "compute", "store")
FAULTS = {"none": 0, "hang": 1, "late": 2, "bad_done": 3, "reject_write": 4}
_FAULT_NAMES = {v: k for k, v in FAULTS.items()}

START, DONE, IDLE, AUTO_RESTART = 0x1, 0x2, 0x4, 0x80
STATUS_BITS = 0x0E  # done, idle, ready: driven by the hardware, ignored when written
DONE_RD = 0x18
# Argument registers the run protocol writes every run: (module, offset, name, value the protocol needs).
ARGS = ((0, 0x10, "insn_count", None), (0, 0x18, "insns", None), (1, 0x10, "inputs", 0), (1, 0x18, "weights", 0),
        (2, 0x20, "uops", 0), (2, 0x28, "biases", 0), (3, 0x10, "outputs", 0))
_ARG_OFFSETS = {(m, off): name for m, off, name, _ in ARGS}
_ACCEPTED_EXTRA = {0x04: "global interrupt enable", 0x08: "interrupt enable", 0x0C: "interrupt status"}


class Control:
    """Named fields of the control page; shared by the serving process and its clients."""

    _U32 = {"pid": 2, "state": 3, "reset_req": 6, "reset_ack": 7, "stop_req": 8, "fault_kind": 9,
            "fault_arg": 10, "fault_seq": 11, "fault_ack": 12, "runs": 13, "deviations": 14, "bases": 20}
    SERVING, STOPPED = 1, 2

    def __init__(self, mm: mmap.mmap, offset: int = CONTROL_OFFSET):
        self.u32 = np.frombuffer(mm, np.uint32, CONTROL_BYTES // 4, offset)
        self.u64 = np.frombuffer(mm, np.uint64, CONTROL_BYTES // 8, offset)
        self.f64 = np.frombuffer(mm, np.float64, CONTROL_BYTES // 8, offset)

    def __getitem__(self, name: str) -> int:
        return int(self.u32[self._U32[name]])

    def __setitem__(self, name: str, value: int) -> None:
        self.u32[self._U32[name]] = value

    @property
    def magic(self) -> int:
        return int(self.u64[0])

    @property
    def heartbeat(self) -> int:
        return int(self.u64[2])

    @property
    def fault_delay(self) -> float:
        return float(self.f64[8])

    @fault_delay.setter
    def fault_delay(self, value: float) -> None:
        self.f64[8] = value

    @property
    def bases(self) -> tuple[int, int, int, int]:
        start = self._U32["bases"]
        return tuple(int(b) for b in self.u32[start:start + 4])


def dram_regions(bases: tuple[int, ...]) -> list[tuple[int, int]]:
    """Every physical page except page 0 and the register windows is DRAM the device may reach."""
    lo, hi = min(bases), max(bases) + PAGE_BYTES
    return [(PAGE_BYTES, lo - PAGE_BYTES), (hi, ADDRESS_SPACE - hi)]


def open_file(path: str | os.PathLike[str]) -> mmap.mmap:
    """Map the whole emulator file, creating or growing it sparse to FILE_BYTES."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if os.fstat(fd).st_size < FILE_BYTES:
            os.ftruncate(fd, FILE_BYTES)
        return mmap.mmap(fd, FILE_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


class Emulator:
    """The serving side: watches the registers and runs programs as the bitstream would."""

    def __init__(self, path: str | os.PathLike[str], env: Environment | None = None,
                 bases: tuple[int, int, int, int] | None = None, log: TextIO | None = None,
                 poll_s: float = 1e-4, idle_poll_s: float = 2e-3):
        self.env = env or get_env()
        self.bases = tuple(bases or self.env.IP_BASES)
        self.mm = open_file(path)
        self.ctl = Control(self.mm)
        self.regs = [np.frombuffer(self.mm, np.uint32, PAGE_BYTES // 4, b) for b in self.bases]
        self.shadow = [np.zeros(PAGE_BYTES // 4, np.uint32) for _ in self.bases]
        self.dram = Dram()
        for base, size in dram_regions(self.bases):
            self.dram.adopt(base, np.frombuffer(self.mm, np.uint8, size, base))
        self.log = log
        self.poll_s, self.idle_poll_s = poll_s, idle_poll_s
        self.state = "idle"
        self._reset(announce=False)

    # --- register helpers -----------------------------------------------------------------
    def _set(self, m: int, offset: int, value: int) -> None:
        self.regs[m][offset >> 2] = value
        self.shadow[m][offset >> 2] = value

    def _get(self, m: int, offset: int) -> int:
        return int(self.shadow[m][offset >> 2])

    def _event(self, kind: str, message: str) -> None:
        if kind == "deviation":
            self.ctl["deviations"] = self.ctl["deviations"] + 1
        if self.log is not None:
            self.log.write(f"{kind}: {message}\n")
            self.log.flush()

    def _reset(self, announce: bool = True) -> None:
        """What programming the bitstream does: registers to reset values, fresh SRAM and token FIFOs."""
        if announce:
            what = "" if self.state == "idle" else f" (abandoned a run that was {self.state})"
            self._event("reset", f"re-programmed: registers, SRAM and token FIFOs cleared{what}")
        for m in range(4):
            self.regs[m][:] = 0
            self._set(m, 0, IDLE)
        for m, offset, _, _ in ARGS:
            self._set(m, offset, POISON)
        for m in range(4):
            self.shadow[m][:] = self.regs[m]
        self.dev = SimDevice(self.env, self.dram)
        self.state, self.armed, self.reject, self.latched, self.due = "idle", (0, 0, 0.0), None, (0, 0), 0.0
        self.armed_done = 1

    # --- the serving loop -----------------------------------------------------------------
    def serve(self, parent: int | None = None) -> None:
        """Poll until asked to stop (or until ``parent`` exits, so a crashed test leaves nothing behind)."""
        ctl = self.ctl
        ctl.u64[0] = MAGIC
        ctl["pid"] = os.getpid()
        ctl.u32[20:24] = self.bases
        ctl["state"] = Control.SERVING
        last_activity = time.monotonic()
        while not ctl["stop_req"]:
            ctl.u64[2] += 1
            self._control()
            if self._scan() or self.state not in ("idle", "hung"):
                last_activity = time.monotonic()
            self._step()
            idle = time.monotonic() - last_activity > 0.25
            if idle and parent is not None and os.getppid() != parent:
                break
            time.sleep(self.idle_poll_s if idle else self.poll_s)
        ctl["state"] = Control.STOPPED

    def _control(self) -> None:
        ctl = self.ctl
        if ctl["reset_req"] != ctl["reset_ack"]:
            self._reset()
            ctl["reset_ack"] = ctl["reset_req"]
        if ctl["fault_seq"] != ctl["fault_ack"]:
            kind, arg = ctl["fault_kind"], ctl["fault_arg"]
            if kind == FAULTS["reject_write"]:
                self.reject = (arg >> 12 & 3, arg & 0xFFF)
            else:
                self.armed = (kind, arg, ctl.fault_delay)
            ctl["fault_ack"] = ctl["fault_seq"]

    def _scan(self) -> bool:
        """Apply every register write made since the last poll; True if there was one."""
        seen = False
        for m in range(4):
            snap = self.regs[m].copy()
            for i in np.flatnonzero(snap != self.shadow[m]).tolist():
                seen = True
                self._on_write(m, i * 4, int(snap[i]))
        return seen

    def _on_write(self, m: int, offset: int, value: int) -> None:
        where = f"{MODULES[m]}+0x{offset:02x}"
        old = int(self.shadow[m][offset >> 2])
        if self.reject == (m, offset):
            self.regs[m][offset >> 2] = old
            self.reject = None
            self._event("fault", f"rejected the write of 0x{value:x} to {where} (injected)")
        elif offset == 0:
            if value & ~(START | AUTO_RESTART | STATUS_BITS):
                self._event("deviation", f"{where} (ap_ctrl) written 0x{value:x}: only start (0x1) and "
                                         "auto_restart (0x80) are writable")
            status = 0 if value & START else old & STATUS_BITS  # a started block is neither idle nor done
            self._set(m, 0, (value & (START | AUTO_RESTART)) | status)
        elif (m, offset) in _ARG_OFFSETS:
            self.shadow[m][offset >> 2] = value
        elif offset in _ACCEPTED_EXTRA or (m, offset) == (2, 0x10):
            self.shadow[m][offset >> 2] = value
            name = _ACCEPTED_EXTRA.get(offset, "done input")
            self._event("deviation", f"write of 0x{value:x} to {where} ({name}): not part of the run protocol")
        else:
            self.regs[m][offset >> 2] = old
            name = "read-only done register" if (m, offset) == (2, DONE_RD) else "no register there"
            self._event("deviation", f"write of 0x{value:x} to {where} ({name}): the hardware does not accept it")

    def _step(self) -> None:
        if self.state == "idle" and self._get(0, 0) & START:
            self._accept()
        elif self.state == "starting modules":
            self._wait_modules()
        elif self.state == "finishing late" and time.monotonic() >= self.due:
            self._complete(self.armed_done)

    def _accept(self) -> None:
        """Fetch latches its arguments at start; compute clears `done` with its first instruction."""
        problems = []
        for m, offset, name, need in ARGS:
            value, where = self._get(m, offset), f"{MODULES[m]}+0x{offset:02x} ({name})"
            if value == POISON:
                problems.append(f"fetch was started before {where} was written for this run")
            elif need is not None and value != need:
                problems.append(f"{where} is 0x{value:x} at start; the protocol writes {need} "
                                "(dram_base values are absolute physical addresses)")
        self.latched = (self._get(0, 0x18), self._get(0, 0x10))
        self._set(2, DONE_RD, 0)
        self._set(0, 0, 0)
        for p in problems:
            self._event("deviation", p)
        self.state = "hung" if problems else "starting modules"

    def _wait_modules(self) -> None:
        ctrl = [self._get(m, 0) for m in (1, 2, 3)]
        for m, c in zip((1, 2, 3), ctrl):
            if c & (START | AUTO_RESTART) == START:
                self._event("deviation", f"{MODULES[m]} started with 0x1, not 0x81 (auto-restart): it would run "
                                         "one instruction and stop")
                self.state = "hung"
                return
        if all(c & (START | AUTO_RESTART) == START | AUTO_RESTART for c in ctrl):
            for m in (1, 2, 3):
                self._set(m, 0, START | AUTO_RESTART)
            self._execute()

    def _execute(self) -> None:
        (kind, arg, delay), self.armed = self.armed, (0, 0, 0.0)
        fault = _FAULT_NAMES.get(kind, "none")
        if fault == "hang":
            self._set(0, 0, DONE | IDLE)
            self._event("fault", "the core never finishes (injected)")
            self.state = "hung"
            return
        addr, count = self.latched
        try:
            self.dev.run(addr, count)
        except VTAError as e:
            self._set(0, 0, DONE | IDLE)
            self._event("program", f"the device would not finish: {e}")
            self.state = "hung"
            return
        self.armed_done = arg if fault == "bad_done" else 1
        if fault == "late":
            self._event("fault", f"finishing {delay:.3f} s late (injected)")
            self.state, self.due = "finishing late", time.monotonic() + delay
        else:
            self._complete(self.armed_done)

    def _complete(self, done: int) -> None:
        for m, offset, _, _ in ARGS:
            self._set(m, offset, POISON)
        self._set(0, 0, DONE | IDLE)
        self.ctl["runs"] = self.ctl["runs"] + 1
        self._set(2, DONE_RD, done)  # last: the driver treats done == 1 as the end of the run
        self.state = "idle"


def main(argv: list[str] | None = None) -> int:
    """``python -m vta.sim.emulator FILE``: serve an emulated board until stopped."""
    p = argparse.ArgumentParser(prog="vta-emulator", description=__doc__.splitlines()[0])
    p.add_argument("file", help="emulator file (created sparse if missing)")
    p.add_argument("--config-json", help="hardware configuration as JSON (default: the active one)")
    p.add_argument("--log", help="append protocol deviations, faults and resets to this file")
    p.add_argument("--parent", type=int, help="exit when this parent pid is gone")
    p.add_argument("--poll-us", type=float, default=100.0, help="register poll interval while active")
    args = p.parse_args(argv)
    env = Environment.from_dict(json.loads(args.config_json), "--config-json") if args.config_json else get_env()
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(Path(args.log).open("a")) if args.log else sys.stderr
        Emulator(args.file, env, log=log, poll_s=args.poll_us * 1e-6).serve(parent=args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
