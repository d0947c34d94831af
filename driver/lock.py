"""One owner per device: an advisory ``flock`` shared by notebooks, scripts and the RPC service.

The lock is taken without blocking, so a second owner gets :class:`DeviceBusy` naming the pid
and command that hold it (and what they are doing, see :meth:`DeviceLock.describe`) instead of
hanging. The kernel drops the lock when the owner exits or crashes,
so a stale lock file never blocks anyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path

from vta.errors import DeviceBusy, DeviceError

__all__ = ["DEFAULT_LOCK_PATH", "DeviceLock", "command_line"]

DEFAULT_LOCK_PATH = "/tmp/vta-pynq.lock"
_DOING_CHARS = 160


def command_line() -> str:
    """This process's command line (``python -m X`` shown as ``X``): the default description of the owner."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = os.path.basename(program)
    if name == "__main__.py":
        name = os.path.basename(os.path.dirname(program))
    return " ".join([name, *sys.argv[1:]])


class DeviceLock:
    """An exclusive, non-blocking lock on ``path`` that records the owner's pid in the file."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path if path is not None else DEFAULT_LOCK_PATH)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str = "the VTA device") -> None:
        """Take the lock or raise DeviceBusy (another owner) / DeviceError (unusable lock file)."""
        if self._fd is not None:
            raise DeviceError(f"lock {self.path} is already held by this DeviceLock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            fd = self._open_read_only()
        except OSError as e:
            raise DeviceError(f"cannot open lock file {self.path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self._owner(fd)
            os.close(fd)
            raise DeviceBusy(f"{what} is busy: owned by {owner} (lock {self.path}); close that session "
                             "(or wait for it to finish) and retry") from None
        self._fd = fd
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # another user (the RPC service, a notebook) must be able to open it
        self.describe(command_line())

    def describe(self, doing: str) -> None:
        """Record what the owner is doing, for the busy error other processes get (best effort)."""
        if self._fd is None:
            raise DeviceError(f"lock {self.path} is not held by this DeviceLock")
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {' '.join(doing.split())[:_DOING_CHARS]}\n".encode(), 0)

    def _open_read_only(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY)
        except OSError as e:
            raise DeviceError(f"cannot open lock file {self.path}: {e.strerror}; pass a lock path you can "
                              "write, or make the file world-readable") from e

    @staticmethod
    def _owner(fd: int) -> str:
        try:
            text = os.pread(fd, _DOING_CHARS + 32, 0).decode().strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        pid, _, doing = text.partition(" ")
        if not pid.isdigit():
            return "another process"
        return f"pid {pid} ({doing})" if doing else f"pid {pid}"

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays so other owners keep one inode to lock."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> DeviceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
