"""Framed byte channels with deadlines: a (TLS) socket, or a pair of pipes (``--stdio`` over SSH).

Every read has a deadline, so a peer that stops mid-frame, or never sends one, is cut off
instead of holding a thread; a frame longer than the caller's limit is refused from its header,
before anything is allocated for it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time

from vta.errors import RemoteError
from vta.runtime.rpc.protocol import HEADER

__all__ = ["Channel", "PipeChannel", "SocketChannel"]


class Channel:
    """Send and receive whole frames; subclasses move bytes (``_recv_some``, ``send``)."""

    def recv_frame(self, limit: int, first_byte_s: float, frame_s: float, awaited: str = "a request") -> bytes:
        """One frame body (``awaited`` names it in errors): wait ``first_byte_s`` for it to start, then
        ``frame_s`` for all of it.

        Raises RemoteError on a closed peer, a timeout, or a length over ``limit``.
        """
        first = self._recv_exact(1, time.monotonic() + first_byte_s, f"waiting for {awaited}")
        deadline = time.monotonic() + frame_s
        (length,) = HEADER.unpack(first + self._recv_exact(HEADER.size - 1, deadline, "reading a frame header"))
        if length > limit:
            raise RemoteError(f"rpc frame of {length} bytes is over the {limit}-byte limit")
        return self._recv_exact(length, deadline, f"reading a {length}-byte frame")

    def _recv_exact(self, n: int, deadline: float, what: str) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RemoteError(f"rpc peer too slow: timed out {what} ({len(buf)} of {n} bytes)")
            chunk = self._recv_some(n - len(buf), left)
            if chunk is None:
                continue
            if not chunk:
                raise RemoteError(f"rpc peer closed the connection while {what}")
            buf += chunk
        return bytes(buf)

    def _recv_some(self, n: int, timeout: float) -> bytes | None:
        raise NotImplementedError

    def send(self, data: bytes, timeout: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SocketChannel(Channel):
    """A connected socket, plain or ``ssl``-wrapped."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def _recv_some(self, n: int, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(min(n, 1 << 20))
        except TimeoutError:
            return None
        except OSError as e:
            raise RemoteError(f"rpc connection failed: {e}") from None

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise RemoteError(f"rpc connection failed while sending: {e}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class PipeChannel(Channel):
    """Frames over two file descriptors: the server's stdin/stdout, or a child process's pipes."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd

    def _recv_some(self, n: int, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        if not ready:
            return None
        try:
            return os.read(self.rfd, min(n, 1 << 20))
        except OSError as e:
            raise RemoteError(f"rpc pipe failed: {e}") from None

    def send(self, data: bytes, timeout: float) -> None:
        view, deadline = memoryview(data), time.monotonic() + timeout
        try:
            while view:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.wfd], [], left)[1]:
                    raise RemoteError("rpc peer too slow: timed out sending a frame")
                view = view[os.write(self.wfd, view[:1 << 16]):]
        except OSError as e:
            raise RemoteError(f"rpc pipe failed while sending: {e}") from None

    def close(self) -> None:
        for fd in {self.rfd, self.wfd}:
            with contextlib.suppress(OSError):
                os.close(fd)
