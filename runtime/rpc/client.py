"""The host side of ``vta rpc``: open a session by URL, send a request, get its reply or its error.

URLs: ``tcp+tls://host:port`` (service mode: TLS from the standard library, the server's
certificate checked against ``cafile`` or the system store, a pre-shared token), ``ssh://user@host``
(runs ``vta rpc serve --stdio`` over the SSH channel: SSH authenticates and encrypts, no open
port), ``tcp://127.0.0.1:port`` (loopback only, no TLS: tests and benchmarks), and ``stdio:``
with ``command=[...]`` (a local child process speaking the protocol on its stdin/stdout).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import subprocess
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from vta.errors import (
    PROGRAM_ERRORS,
    BackendError,
    DeviceBusy,
    DeviceError,
    DeviceTimeout,
    ProgramError,
    RemoteError,
    SimLimitError,
    VTAError,
)
from vta.runtime.rpc import protocol
from vta.runtime.rpc.channel import Channel, PipeChannel, SocketChannel

__all__ = ["Connection", "raise_remote"]

_ERRORS: dict[str, type[VTAError]] = {"busy": DeviceBusy, "timeout": DeviceTimeout, "device": DeviceError,
                                      "backend": BackendError}


def raise_remote(kind: str, message: str) -> None:
    """Raise the local error class the server named (program errors keep their class)."""
    cls = PROGRAM_ERRORS.get(kind) or (SimLimitError if kind == SimLimitError.error_class else None)
    if cls is not None:
        err: ProgramError = cls.__new__(cls)
        Exception.__init__(err, message)
        err.index, err.module, err.detail = None, None, message
        raise err
    raise _ERRORS.get(kind, RemoteError)(message if kind in _ERRORS else f"rpc server refused ({kind}): {message}")


class Connection:
    """One session with a ``vta rpc`` server; ``call`` is one round trip."""

    def __init__(self, chan: Channel, process: subprocess.Popen | None = None):
        self.chan, self.process = chan, process
        self.closed = False

    @classmethod
    def open(cls, url: str, *, cafile: str | None = None,
             command: Sequence[str] | None = None, timeout_s: float = 10.0) -> Connection:
        """Connect to ``url`` (see the module docstring); RemoteError when that fails."""
        parts = urlsplit(url)
        if parts.scheme in ("tcp", "tcp+tls"):
            if not parts.hostname or not parts.port:
                raise RemoteError(f"rpc url {url!r}: expected {parts.scheme}://HOST:PORT")
            if parts.scheme == "tcp" and not _loopback(parts.hostname):
                raise RemoteError(f"rpc url {url!r}: plain tcp is allowed only on loopback; use tcp+tls://"
                                  "HOST:PORT (service mode) or ssh://USER@HOST")
            try:
                sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if parts.scheme == "tcp+tls":
                    ctx = ssl.create_default_context(cafile=cafile)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                    sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
            except (OSError, ssl.SSLError) as e:
                raise RemoteError(f"rpc: cannot connect to {url}: {e}") from None
            return cls(SocketChannel(sock))
        if parts.scheme in ("ssh", "stdio"):
            if parts.scheme == "ssh":
                if not parts.hostname:
                    raise RemoteError(f"rpc url {url!r}: expected ssh://[USER@]HOST[:PORT]")
                target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
                port = ["-p", str(parts.port)] if parts.port else []
                argv = ["ssh", "-T", "-o", "BatchMode=yes", *port, target, *(command or ["vta", "rpc", "serve",
                                                                                         "--stdio"])]
            elif not command:
                raise RemoteError("rpc url 'stdio:' needs command=[...], the server to start")
            else:
                argv = list(command)
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            except OSError as e:
                raise RemoteError(f"rpc: cannot start {argv[0]}: {e}") from None
            return cls(PipeChannel(proc.stdout.fileno(), proc.stdin.fileno()), proc)
        raise RemoteError(f"rpc url {url!r}: the scheme must be tcp+tls://, ssh://, tcp:// (loopback) or stdio:")

    def call(self, msg: protocol.Message, timeout_s: float) -> dict[str, Any]:
        """Send ``msg``, wait up to ``timeout_s`` for the reply; its value, or the error it names raised here."""
        if self.closed:
            raise RemoteError("rpc connection is closed")
        try:
            self.chan.send(protocol.encode(msg), timeout_s)
            body = self.chan.recv_frame(protocol.MAX_FRAME, timeout_s, timeout_s, "the reply")
            reply = protocol.decode(body, protocol.REPLIES)
        except RemoteError:
            self.close()
            raise
        if isinstance(reply, protocol.Err):
            raise_remote(reply.error, reply.message)
        return reply.value  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the channel (and stop a child server process)."""
        if self.closed:
            return
        self.closed = True
        if self.process is None:
            self.chan.close()
        else:  # the pipes belong to the Popen's file objects
            for pipe in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token: str | None, token_file: str | os.PathLike[str] | None) -> str:
    """The token given or the first line of ``token_file`` (empty without either: enough only over SSH)."""
    if token is not None and token_file is not None:
        raise RemoteError("rpc: give token= or token_file=, not both")
    if token_file is None:
        return token or ""
    try:
        with open(token_file, encoding="utf-8") as f:
            return f.readline().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise RemoteError(f"rpc: cannot read the token file {os.fspath(token_file)!r}: {e}") from None
