"""Start, control and stop a board emulator process (:mod:`vta.driver.emulator`) from the driver side.

The emulator is a separate process, as the FPGA is a separate device: the driver's C code only
ever talks to it through the shared file. This class owns that process (or attaches to one
started with ``vta emulator serve``) and speaks the control page: reset ("re-program"), fault
injection, and the event log where the emulator reports protocol deviations. Every request rings
the emulator's doorbell, so it is served at once.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vta.config import Environment, get_env
from vta.driver.emulator import CONTROL_BYTES, CONTROL_OFFSET, FAULTS, MAGIC, Control, doorbell_path, open_image
from vta.driver.regmap import ARG_REGS, CTRL, MODULES
from vta.errors import DeviceError

__all__ = ["EmulatedBoard"]

_REJECTABLE = {(MODULES[m], off): name for m, off, name, _ in ARG_REGS} | {(m, CTRL): "ap_ctrl" for m in MODULES[1:]}


class EmulatedBoard:
    """A served emulator file: its control page, its log and (if we started it) its process."""

    def __init__(self, path: str | os.PathLike[str], log_path: str | os.PathLike[str] | None = None,
                 process: subprocess.Popen | None = None, owned_dir: Path | None = None):
        self.path = Path(path)
        self.log_path = Path(log_path) if log_path else None
        self.process = process
        self._owned_dir = owned_dir
        self._log_pos = 0
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, CONTROL_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                 offset=CONTROL_OFFSET)
        finally:
            os.close(fd)
        self.ctl = Control(self._mm, 0)
        self.doorbell = doorbell_path(self.path)
        self._bell: int | None = None

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def start(cls, path: str | os.PathLike[str] | None = None, env: Environment | None = None,
              timeout_s: float = 30.0, token_wait_s: float = 1e-3) -> EmulatedBoard:
        """Spawn ``python -m vta.driver.emulator`` on ``path`` (default: a new temp dir) and wait until it serves."""
        env = env or get_env()
        owned = None
        if path is None:
            owned = Path(tempfile.mkdtemp(prefix="vta-emu-"))
            path = owned / "board.mem"
        path = Path(path)
        fd, mm = open_image(path)  # refuses a file that is not an image, or one already served
        try:
            mm[CONTROL_OFFSET:CONTROL_OFFSET + CONTROL_BYTES] = bytes(CONTROL_BYTES)  # no stale "serving" state
        finally:
            mm.close()
            os.close(fd)
        log = path.with_suffix(".log")
        log.write_text("")
        cmd = [sys.executable, "-m", "vta.driver.emulator", str(path), "--log", str(log), "--parent",
               str(os.getpid()), "--config-json", json.dumps(env.to_dict()), "--token-wait-us", str(token_wait_s * 1e6)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        board = cls(path, log, proc, owned)
        try:
            board._wait(lambda: board.ctl.magic == MAGIC and board.ctl["state"] == Control.SERVING
                        and board.ctl["pid"] == proc.pid, timeout_s, "start serving")
        except DeviceError:
            board.stop()
            raise
        return board

    @classmethod
    def connect(cls, path: str | os.PathLike[str], timeout_s: float = 2.0) -> EmulatedBoard:
        """Attach to an emulator someone else serves (``vta emulator serve FILE``)."""
        if not Path(path).exists():
            raise DeviceError(f"no emulator file at {path}: start one with `vta emulator serve {path}`")
        board = cls(path, Path(path).with_suffix(".log"))
        beat = board.ctl.heartbeat
        board.ring()
        board._wait(lambda: board.ctl.magic == MAGIC and board.ctl.heartbeat != beat, timeout_s, "answer")
        board._log_pos = board.log_path.stat().st_size if board.log_path.exists() else 0
        return board

    @property
    def bases(self) -> tuple[int, int, int, int]:
        return self.ctl.bases

    @property
    def token_wait_s(self) -> float:
        """Modeled wait of a stream's first compute instruction for its token (the stale-`done` window)."""
        return self.ctl["token_wait_us"] * 1e-6

    @token_wait_s.setter
    def token_wait_s(self, value: float) -> None:
        self.ctl["token_wait_us"] = round(value * 1e6)

    def ring(self) -> None:
        """Wake the serving process (it sleeps until its doorbell FIFO is written)."""
        if self._bell is None:
            try:
                self._bell = os.open(self.doorbell, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return  # no server (yet): it reads the control page when it starts
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._bell, b"c")

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.ctl["state"] == Control.SERVING

    def _wait(self, cond: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        pause = 1e-4
        while not cond():
            self.ring()
            if not self.alive():
                raise DeviceError(f"emulator for {self.path} exited before it could {what}: {self._stderr()}")
            if time.monotonic() > deadline:
                raise DeviceError(f"emulator for {self.path} did not {what} within {timeout_s} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def _stderr(self) -> str:
        if self.process is None or self.process.poll() is None:
            return "(not our process)"
        return (self.process.stderr.read().decode(errors="replace").strip() or
                f"exit status {self.process.returncode}")[-2000:]

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the process to stop; terminate, then kill it if it does not. Idempotent."""
        if self.process is not None and self.process.poll() is None:
            self.ctl["stop_req"] = 1
            self.ring()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        if self._bell is not None:
            os.close(self._bell)
            self._bell = None
        with contextlib.suppress(BufferError):
            self._mm.close()
        if self._owned_dir is not None:
            for f in self._owned_dir.iterdir():
                f.unlink()
            self._owned_dir.rmdir()
            self._owned_dir = None

    def __enter__(self) -> EmulatedBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control --------------------------------------------------------------------------
    def reset(self, timeout_s: float = 5.0) -> str:
        """What re-programming the bitstream does to the board: registers, SRAM and token FIFOs cleared."""
        want = (self.ctl["reset_req"] + 1) & 0xFFFFFFFF
        self.ctl["reset_req"] = want
        self._wait(lambda: self.ctl["reset_ack"] == want, timeout_s, "reset")
        return f"emulated board {self.path} re-programmed (reset)"

    def inject(self, fault: str, *, value: int = 0, delay_s: float = 0.0, register: tuple[str, int] | None = None,
               timeout_s: float = 5.0) -> None:
        """Arm one fault for the next run: hang, late (delay_s), bad_done (value), reject_write (register)."""
        if fault not in FAULTS or fault == "none":
            raise DeviceError(f"unknown emulator fault {fault!r}; expected one of "
                              f"{', '.join(k for k in FAULTS if k != 'none')}")
        arg = value
        if fault == "reject_write":
            if register not in _REJECTABLE:
                raise DeviceError(f"cannot reject writes to {register!r}; choose one of "
                                  f"{', '.join(f'{m}+0x{o:02x}' for m, o in _REJECTABLE)}")
            arg = MODULES.index(register[0]) << 12 | register[1]
        ctl = self.ctl
        ctl["fault_kind"], ctl["fault_arg"] = FAULTS[fault], arg & 0xFFFFFFFF
        ctl.fault_delay = delay_s
        want = (ctl["fault_seq"] + 1) & 0xFFFFFFFF
        ctl["fault_seq"] = want
        self._wait(lambda: ctl["fault_ack"] == want, timeout_s, f"arm the {fault} fault")

    def sync(self, timeout_s: float = 5.0) -> None:
        """Return once the emulator has applied every register write made before this call (and logged
        what they caused), so a test reads their effects without waiting for a guessed time."""
        want = (self.ctl["sync_req"] + 1) & 0xFFFFFFFF
        self.ctl["sync_req"] = want
        self._wait(lambda: self.ctl["sync_ack"] == want, timeout_s, "apply the register writes")

    @property
    def deviations(self) -> int:
        """How many protocol deviations the emulator has seen since it started."""
        return self.ctl["deviations"]

    @property
    def runs(self) -> int:
        return self.ctl["runs"]

    def events(self) -> list[str]:
        """Log lines (deviations, faults, refused programs, resets) written since the last call."""
        if self.log_path is None or not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as f:
            f.seek(self._log_pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._log_pos += end
        return data[:end].decode(errors="replace").splitlines()
