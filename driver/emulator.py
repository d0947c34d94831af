"""Register-level Pynq board emulator: the VTA IP register windows and DRAM in one shared file.

Byte ``a`` of the file is physical address ``a`` (a sparse 4 GiB file), so the board driver's
C code maps it exactly as it maps /dev/mem. A serving process watches the four register windows,
follows the HLS ap_ctrl protocol the way the bitstream does (start, auto-restart 0x81, compute
``done`` at 0x18), runs the latched instruction stream with :class:`SimDevice` over the file's
DRAM, and writes ``done``. It also checks the driver's register protocol: every deviation (a start
before the arguments were written, nonzero data base registers, writes the hardware would drop)
is logged, and a run the hardware could not have completed hangs, as it would on the board.

``done`` follows the HLS compute module (spec §3.7, vta.cc ``compute``): it keeps its old value
until compute starts its first instruction after that instruction's token pops complete, then
reads 0; FINISH sets it to 1. Fetch's ap_start clears once it has dispatched the stream. When
the first compute instruction pops a token, fetch finishes before ``done`` drops: for
``token_wait_s`` (a fixed modeled delay standing for the loads the token waits for) the registers
show fetch finished and the previous run's ``done == 1``, as the hardware does.

The emulator sleeps until the driver rings its doorbell (a FIFO beside the file, written by the C
driver after register writes) or a timed event is due, so it never polls. The page after the
4 GiB address space is its own control block (no physical address reaches it): liveness, reset
("re-program") and fault-injection requests, counters. The image file is locked while served.
Argument registers are set to ``POISON`` after each run and at reset (real hardware keeps the old
values) so that a run started without rewriting them is detected.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import mmap
import os
import select
import signal
import stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from vta.config import Environment, get_env
from vta.driver.regmap import ARG_REGS, CTRL, CTRL_BITS, DONE_RD, DONE_WR, MODULES
from vta.errors import DeviceError, VTAError
from vta.isa import COMPUTE_MODULE, DEP_FIELDS, MEM_UOP, OP_FINISH, OP_LOAD, DecodedStream
from vta.sim.device import SimDevice
from vta.sim.dram import PAGE_BYTES, Dram

__all__ = ["ADDRESS_SPACE", "FAULTS", "FILE_BYTES", "POISON", "Control", "Emulator", "doorbell_path", "main",
           "open_image"]

ADDRESS_SPACE = 1 << 32
CONTROL_OFFSET = ADDRESS_SPACE
CONTROL_BYTES = PAGE_BYTES
FILE_BYTES = ADDRESS_SPACE + CONTROL_BYTES
MAGIC = int.from_bytes(b"VTAEMU01", "little")
POISON = 0xBAD0C0DE
FAULTS = {"none": 0, "hang": 1, "late": 2, "bad_done": 3, "reject_write": 4}
_FAULT_NAMES = {v: k for k, v in FAULTS.items()}
QUEUE_DEPTH = 512  # command FIFO depth of the Pynq block design (spec §3.1): fetch stalls beyond it
DEFAULT_TOKEN_WAIT_S = 1e-3
IDLE_WAKE_S = 0.05  # heartbeat, parent check and control requests without a doorbell ring

_BIT = {name: 1 << bit for bit, name in CTRL_BITS}
START, DONE, IDLE, AUTO_RESTART = _BIT["start"], _BIT["done"], _BIT["idle"], _BIT["auto_restart"]
STATUS_BITS = DONE | IDLE | _BIT["ready"]  # driven by the hardware, ignored when written
_INSN_COUNT, _INSNS = ((m, off) for m, off, name, _ in ARG_REGS if name in ("insn_count", "insns"))
_ARG_OFFSETS = {(m, off): name for m, off, name, _ in ARG_REGS}
_ACCEPTED_EXTRA = {0x04: "global interrupt enable", 0x08: "interrupt enable", 0x0C: "interrupt status"}


def doorbell_path(path: str | os.PathLike[str]) -> Path:
    """The FIFO beside an emulator image that wakes its server (``board.mem`` -> ``board.mem.bell``)."""
    return Path(f"{os.fspath(path)}.bell")


class Control:
    """Named fields of the control page; shared by the serving process and its clients."""

    _U32 = {"pid": 2, "state": 3, "reset_req": 6, "reset_ack": 7, "stop_req": 8, "fault_kind": 9,
            "fault_arg": 10, "fault_seq": 11, "fault_ack": 12, "runs": 13, "deviations": 14, "token_wait_us": 15,
            "clears": 18, "bases": 20, "sync_req": 24, "sync_ack": 25}  # u32 16-17 hold fault_delay (f64 8)
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


def _image_error(path: str, why: str) -> DeviceError:
    return DeviceError(f"cannot serve {path}: {why}")


def open_image(path: str | os.PathLike[str]) -> tuple[int, mmap.mmap]:
    """(locked fd, map) of an emulator image, created sparse if missing; refuses anything else.

    An image is an empty or new file, or one of exactly FILE_BYTES bytes whose control page is
    blank or carries the emulator's magic; any other file is left untouched. The file is locked
    (flock) for as long as the fd is open, so a second server on it is refused.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _image_error(path, f"folder {folder} does not exist")
    if os.path.isdir(path):
        raise _image_error(path, "it is a directory; give a file name for the emulator image")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise _image_error(path, e.strerror or str(e)) from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _image_error(path, "it is not a regular file")
        if info.st_size not in (0, FILE_BYTES) or (info.st_size and _magic(fd) not in (0, MAGIC)):
            raise _image_error(path, f"it is not a VTA emulator image ({info.st_size} bytes; an image is an empty "
                                     f"file or a sparse file of exactly {FILE_BYTES} bytes made by the emulator); "
                                     "choose a new file name")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise _image_error(path, f"another emulator already serves it{_server_pid(fd)}; stop that one or use "
                                     "another file") from e
        if info.st_size == 0:
            os.ftruncate(fd, FILE_BYTES)
        return fd, mmap.mmap(fd, FILE_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except BaseException:
        os.close(fd)
        raise


def _magic(fd: int) -> int:
    return int.from_bytes(os.pread(fd, 8, CONTROL_OFFSET), "little")


def _server_pid(fd: int) -> str:
    pid = int.from_bytes(os.pread(fd, 4, CONTROL_OFFSET + 4 * Control._U32["pid"]), "little")
    return f" (pid {pid})" if pid else ""


def _open_doorbell(path: Path) -> int:
    """The doorbell FIFO's read end (created if missing), non-blocking and never at EOF."""
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            raise DeviceError(f"cannot serve the emulator image beside {path}: {path} exists and is not the "
                              "emulator's doorbell FIFO; remove it")
    except FileNotFoundError:
        os.mkfifo(path, 0o666)
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)  # O_RDWR: a writer always exists, so no EOF


class Emulator:
    """The serving side: sleeps until woken, then applies register writes as the bitstream would."""

    def __init__(self, path: str | os.PathLike[str], env: Environment | None = None,
                 bases: tuple[int, int, int, int] | None = None, log: TextIO | None = None,
                 token_wait_s: float = DEFAULT_TOKEN_WAIT_S):
        self.env = env or get_env()
        self.bases = tuple(bases or self.env.IP_BASES)
        self.fd, self.mm = open_image(path)
        self.bell_path = doorbell_path(path)
        try:
            self.bell = _open_doorbell(self.bell_path)
        except BaseException:
            self.mm.close()
            os.close(self.fd)
            raise
        # A fresh control page: requests left by an earlier server's clients (stop, reset) are not ours.
        self.mm[CONTROL_OFFSET:CONTROL_OFFSET + CONTROL_BYTES] = bytes(CONTROL_BYTES)
        self.ctl = Control(self.mm)
        self.ctl["token_wait_us"] = round(token_wait_s * 1e6)
        self.regs = [np.frombuffer(self.mm, np.uint32, PAGE_BYTES // 4, b) for b in self.bases]
        self.shadow = [np.zeros(PAGE_BYTES // 4, np.uint32) for _ in self.bases]
        self.dram = Dram()
        for base, size in dram_regions(self.bases):
            self.dram.adopt(base, np.frombuffer(self.mm, np.uint8, size, base))
        self.log = log
        self._shapes: OrderedDict[bytes, tuple[bool, bool] | str | None] = OrderedDict()
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
            self._set(m, CTRL, IDLE)
        for m, offset, _, _ in ARG_REGS:
            self._set(m, offset, POISON)
        for m in range(4):
            self.shadow[m][:] = self.regs[m]
        self.dev = SimDevice(self.env, self.dram)
        self.state, self.armed, self.reject, self.latched, self.due = "idle", (0, 0, 0.0), None, (0, 0), 0.0
        self.armed_done = 1

    # --- the serving loop -----------------------------------------------------------------
    def serve(self, parent: int | None = None) -> None:
        """Serve until asked to stop (or until ``parent`` exits, so a crashed test leaves nothing behind)."""
        ctl = self.ctl
        ctl.u64[0] = MAGIC
        ctl["pid"] = os.getpid()
        ctl.u32[20:24] = self.bases
        ctl["state"] = Control.SERVING
        while not ctl["stop_req"]:
            ctl.u64[2] += 1
            sync = ctl["sync_req"]  # read before the scan: the writes made before this request are seen now
            self._control()
            self._scan()
            self._step()
            ctl["sync_ack"] = sync
            if parent is not None and os.getppid() != parent:
                break
            self._sleep()
        ctl["state"] = Control.STOPPED

    def _sleep(self) -> None:
        """Block until the doorbell rings or the next timed event (a token wait, a late finish) is due."""
        timeout = IDLE_WAKE_S
        if self.state in ("waiting for tokens", "finishing late"):
            timeout = min(timeout, max(self.due - time.monotonic(), 0.0))
        if select.select([self.bell], [], [], timeout)[0]:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.bell, 4096):
                    pass

    def close(self) -> None:
        """Remove the doorbell (this server made or adopted it under the image lock) and release the image."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.bell_path)
        os.close(self.bell)
        with contextlib.suppress(BufferError):
            self.mm.close()
        os.close(self.fd)  # releases the image lock

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
        """Apply every register write made since the last wake-up; True if there was one."""
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
        elif offset == CTRL:
            if value & ~(START | AUTO_RESTART | STATUS_BITS):
                self._event("deviation", f"{where} (ap_ctrl) written 0x{value:x}: only start (0x1) and "
                                         "auto_restart (0x80) are writable")
            status = 0 if value & START else old & STATUS_BITS  # a started block is neither idle nor done
            self._set(m, CTRL, (value & (START | AUTO_RESTART)) | status)
        elif (m, offset) in _ARG_OFFSETS:
            self.shadow[m][offset >> 2] = value
        elif offset in _ACCEPTED_EXTRA or (m, offset) == (2, DONE_WR):
            self.shadow[m][offset >> 2] = value
            name = _ACCEPTED_EXTRA.get(offset, "done input")
            self._event("deviation", f"write of 0x{value:x} to {where} ({name}): not part of the run protocol")
        else:
            self.regs[m][offset >> 2] = old
            name = "read-only done register" if (m, offset) == (2, DONE_RD) else "no register there"
            self._event("deviation", f"write of 0x{value:x} to {where} ({name}): the hardware does not accept it")

    def _step(self) -> None:
        if self.state == "idle" and self._get(0, CTRL) & START:
            self._accept()
        if self.state == "starting modules":
            self._wait_modules()
        if self.state in ("waiting for tokens", "finishing late") and time.monotonic() >= self.due:
            if self.state == "waiting for tokens":
                self._set(2, DONE_RD, 0)
                self._set(0, CTRL, DONE | IDLE)
                self._execute()
            else:
                self._complete(self.armed_done)

    def _accept(self) -> None:
        """Fetch latches its arguments at start; it is busy (ap_start still set) until it has dispatched."""
        problems = []
        for m, offset, name, need in ARG_REGS:
            value, where = self._get(m, offset), f"{MODULES[m]}+0x{offset:02x} ({name})"
            if value == POISON:
                problems.append(f"fetch was started before {where} was written for this run")
            elif need is not None and value != need:
                problems.append(f"{where} is 0x{value:x} at start; the protocol writes {need} "
                                "(dram_base values are absolute physical addresses)")
        self.latched = (self._get(*_INSNS), self._get(*_INSN_COUNT))
        for p in problems:
            self._event("deviation", p)
        if problems:
            self._set(0, CTRL, 0)
            self.state = "hung"
        else:
            self.state = "starting modules"

    def _wait_modules(self) -> None:
        ctrl = [self._get(m, CTRL) for m in (1, 2, 3)]
        for m, c in zip((1, 2, 3), ctrl):
            if c & (START | AUTO_RESTART) == START:
                self._event("deviation", f"{MODULES[m]} started with 0x1, not 0x81 (auto-restart): it would run "
                                         "one instruction and stop")
                self._set(0, CTRL, 0)
                self.state = "hung"
                return
        if all(c & (START | AUTO_RESTART) == START | AUTO_RESTART for c in ctrl):
            for m in (1, 2, 3):
                self._set(m, CTRL, START | AUTO_RESTART)
            self._dispatch()

    def _fail(self, kind: str, message: str) -> None:
        self._set(0, CTRL, DONE | IDLE)
        self._event(kind, message)
        self.state = "hung"

    def _dispatch(self) -> None:
        """Fetch dispatches the stream; `done` drops when compute's first instruction has its tokens."""
        addr, count = self.latched
        try:
            shape = self._shape(self.dev.read_stream(addr, count))
        except VTAError as e:
            self._fail("program", f"the device would not finish: {e}")
            return
        if not isinstance(shape, tuple):
            self._no_finish()
            return
        waits, fetch_stalls = shape
        if not waits:
            self._set(2, DONE_RD, 0)  # compute takes a pop-free first instruction at once
            self._set(0, CTRL, DONE | IDLE)
            self._execute()
            return
        if not fetch_stalls:
            self._set(0, CTRL, DONE | IDLE)  # dispatched everything; the previous `done` is still showing
        self.state, self.due = "waiting for tokens", time.monotonic() + self.ctl["token_wait_us"] * 1e-6

    def _shape(self, data: bytes) -> tuple[bool, bool] | str | None:
        """What timing needs from a stream, cached by its bytes: None without FINISH, "nops" for a stream of
        flag-free compute NOPs (the driver's done clearing), else (first compute instruction pops a token,
        some command queue overflows so fetch cannot finish before compute moves)."""
        if data in self._shapes:
            self._shapes.move_to_end(data)
            return self._shapes[data]
        s = DecodedStream(data, self.env)
        compute = np.flatnonzero(s.module == COMPUTE_MODULE)
        shape: tuple[bool, bool] | str | None
        if np.any(s.opcode[compute] == OP_FINISH):
            first = int(compute[0])
            waits = bool(s.mem["pop_prev_dep"][first] or s.mem["pop_next_dep"][first])
            shape = (waits, int(max(np.bincount(s.module, minlength=3))) > QUEUE_DEPTH)
        else:
            nop = (s.opcode == OP_LOAD) & (s.mem["memory_type"] == MEM_UOP) & (s.mem["x_size"] == 0)
            for name in DEP_FIELDS:
                nop &= s.mem[name] == 0
            shape = "nops" if s.count and nop.all() else None
        self._shapes[data] = shape
        if len(self._shapes) > 64:
            self._shapes.popitem(last=False)
        return shape

    def _no_finish(self) -> None:
        """A stream of flag-free compute NOPs (the driver's `done` clearing) runs; anything else waits forever."""
        if self._shape(self.dev.read_stream(*self.latched)) == "nops":
            for m, offset, _, _ in ARG_REGS:  # first: the driver writes the next run's once done reads 0
                self._set(m, offset, POISON)
            self._set(2, DONE_RD, 0)
            self._set(0, CTRL, DONE | IDLE)
            self.ctl["clears"] = self.ctl["clears"] + 1
            self.state = "idle"
            return
        self._fail("program", "the device would not finish: the stream has no FINISH, so done never becomes 1")

    def _execute(self) -> None:
        (kind, arg, delay), self.armed = self.armed, (0, 0, 0.0)
        fault = _FAULT_NAMES.get(kind, "none")
        if fault == "hang":
            self._fail("fault", "the core never finishes (injected)")
            return
        addr, count = self.latched
        try:
            self.dev.run(addr, count)
        except VTAError as e:
            self._fail("program", f"the device would not finish: {e}")
            return
        self.armed_done = arg if fault == "bad_done" else 1
        if fault == "late":
            self._event("fault", f"finishing {delay:.3f} s late (injected)")
            self.state, self.due = "finishing late", time.monotonic() + delay
        else:
            self._complete(self.armed_done)

    def _complete(self, done: int) -> None:
        for m, offset, _, _ in ARG_REGS:
            self._set(m, offset, POISON)
        self._set(0, CTRL, DONE | IDLE)
        self.ctl["runs"] = self.ctl["runs"] + 1
        self._set(2, DONE_RD, done)  # last: FINISH writes done after everything before it completed
        self.state = "idle"


def _positive_us(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"expected a number of microseconds >= 0, got {text!r}")
    return value


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_file(path: str | os.PathLike[str], env: Environment | None = None, log_path: str | None = None,
               parent: int | None = None, token_wait_s: float = DEFAULT_TOKEN_WAIT_S,
               on_ready: Callable[[], None] | None = None) -> None:
    """Serve an emulated board in ``path`` until stopped; DeviceError for a file that cannot be an image.

    ``on_ready`` is called once the image is checked and locked, before serving starts.
    """
    emulator = Emulator(path, env, token_wait_s=token_wait_s)  # checks and locks the image before the log opens
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # `kill PID` cleans up like Ctrl-C
    try:
        if on_ready is not None:
            on_ready()
        with contextlib.ExitStack() as stack:
            emulator.log = stack.enter_context(Path(log_path).open("a")) if log_path else sys.stderr
            emulator.serve(parent=parent)
    finally:
        emulator.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m vta.driver.emulator FILE``: serve an emulated board until stopped."""
    p = argparse.ArgumentParser(prog="vta-emulator", description=__doc__.splitlines()[0])
    p.add_argument("file", help="emulator image (created sparse if missing)")
    p.add_argument("--config-json", help="hardware configuration as JSON (default: the active one)")
    p.add_argument("--log", help="append protocol deviations, faults and resets to this file")
    p.add_argument("--parent", type=int, help="exit when this parent pid is gone")
    p.add_argument("--token-wait-us", type=_positive_us, default=DEFAULT_TOKEN_WAIT_S * 1e6,
                   help="modeled wait of a first compute instruction for its load/store token (default 1000)")
    args = p.parse_args(argv)
    try:
        env = Environment.from_dict(json.loads(args.config_json), "--config-json") if args.config_json else get_env()
        serve_file(args.file, env, args.log, args.parent, args.token_wait_us * 1e-6)
    except KeyboardInterrupt:
        return 0
    except VTAError as e:
        print(f"vta-emulator: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
