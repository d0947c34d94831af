"""The wire protocol of ``vta rpc``: length-prefixed msgpack frames holding data-only messages.

TVM's RPC server accepted shared libraries; this one accepts only the messages below. A frame is
a 4-byte big-endian length and a msgpack body ``[VERSION, kind, {field: value}]``. msgpack carries
only nil, bool, int, float, str, bytes, arrays and maps (extension types are refused), so nothing
in a frame can name code to run. Each message is a frozen dataclass; decoding checks the exact
field set, every field's type (``bool`` is not an int) and its range, so a handler only ever sees
well-typed values. A reply's fields depend on its request; the client checks them (a run reply:
:data:`RUN_REPLY`). Changing what a message carries changes :data:`VERSION`, so an old peer meets
a clear version error at hello instead of a reply it misreads. Frames are bounded:
:data:`MAX_FRAME` once authenticated (a whole VTA_MAX_XFER buffer plus headroom),
:data:`MAX_HELLO_FRAME` before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from vta.config import MAX_XFER
from vta.errors import RemoteError, VTAError

__all__ = [
    "MAX_FRAME", "MAX_HELLO_FRAME", "MAX_WRITES", "RUN_REPLY", "VERSION", "Alloc", "Bitstream", "Bye", "Err", "Free",
    "Hello", "Info", "Message", "Ok", "Read", "Reset", "Run", "Timing", "Write", "decode", "encode", "frame",
]

VERSION = 2  # 2: a run reply carries device_s, the server-measured seconds of the device run
MAX_FRAME = MAX_XFER + (1 << 20)  # one full-size buffer in a frame, plus room for the envelope
MAX_HELLO_FRAME = 4096  # before authentication a peer may send only a small hello
MAX_WRITES = 4096  # bulk copies in one request
MAX_RUN_S = 3600.0
# The fields of the reply to a run: the request number (for timing), the counters (None without
# them), the bytes the run stored, and the seconds the device run took as the server measured it.
RUN_REPLY = ("run_id", "counters", "stored", "device_s")
HEADER = struct.Struct(">I")
# Container sizes a frame may declare: a short frame cannot make the decoder build a huge list.
_LIMITS = {"max_array_len": 1 << 16, "max_map_len": 1 << 10, "max_str_len": 1 << 16, "max_ext_len": 0}
U64 = (1 << 64) - 1
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+@: /()")


def _uint(lo: int, hi: int) -> tuple[str, int, int]:
    return ("int", lo, hi)


@dataclass(frozen=True)
class Message:
    """Base of every message: ``KIND`` on the wire and ``SPEC`` (field -> check) for decoding."""

    KIND: ClassVar[str] = ""
    SPEC: ClassVar[dict[str, tuple]] = {}

    def to_wire(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- requests ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hello(Message):
    """First frame of a session: protocol version is in the envelope; ``token`` authenticates service mode."""

    token: str
    client: str
    KIND: ClassVar[str] = "hello"
    SPEC: ClassVar[dict[str, tuple]] = {"token": ("str", 0, 256), "client": ("name", 0, 160)}


@dataclass(frozen=True)
class Alloc(Message):
    """A buffer of ``nbytes``; ``phys`` places it at a fixed address (-1: anywhere)."""

    nbytes: int
    phys: int
    KIND: ClassVar[str] = "alloc"
    SPEC: ClassVar[dict[str, tuple]] = {"nbytes": _uint(1, MAX_XFER), "phys": _uint(-1, (1 << 32) - 1)}


@dataclass(frozen=True)
class Free(Message):
    handle: int
    KIND: ClassVar[str] = "free"
    SPEC: ClassVar[dict[str, tuple]] = {"handle": _uint(0, U64)}


@dataclass(frozen=True)
class Write(Message):
    """Bulk copies into this session's buffers: ``[handle, offset, bytes]`` triples."""

    writes: tuple[tuple[int, int, bytes], ...]
    KIND: ClassVar[str] = "write"
    SPEC: ClassVar[dict[str, tuple]] = {"writes": ("writes",)}


@dataclass(frozen=True)
class Read(Message):
    """Pending ``writes`` (``[handle, offset, bytes]`` triples), then ``nbytes`` at ``offset`` of ``handle``."""

    writes: tuple[tuple[int, int, bytes], ...]
    handle: int
    offset: int
    nbytes: int
    KIND: ClassVar[str] = "read"
    SPEC: ClassVar[dict[str, tuple]] = {"writes": ("writes",), "handle": _uint(0, U64),
                                         "offset": _uint(0, MAX_XFER), "nbytes": _uint(0, MAX_XFER)}


@dataclass(frozen=True)
class Run(Message):
    """Pending ``writes``, then verify and run ``insn_count`` instructions at ``insn_phys``."""

    writes: tuple[tuple[int, int, bytes], ...]
    insn_phys: int
    insn_count: int
    timeout_s: float
    KIND: ClassVar[str] = "run"
    SPEC: ClassVar[dict[str, tuple]] = {"writes": ("writes",), "insn_phys": _uint(0, (1 << 32) - 1),
                                         "insn_count": _uint(1, MAX_XFER // 16), "timeout_s": ("float", 0.0, MAX_RUN_S)}


@dataclass(frozen=True)
class Timing(Message):
    """The predicted timing of run number ``run_id`` of this session."""

    run_id: int
    KIND: ClassVar[str] = "timing"
    SPEC: ClassVar[dict[str, tuple]] = {"run_id": _uint(0, U64)}


@dataclass(frozen=True)
class Bitstream(Message):
    """Program a released bitstream chosen by its manifest name (never an uploaded file)."""

    name: str
    KIND: ClassVar[str] = "bitstream"
    SPEC: ClassVar[dict[str, tuple]] = {"name": ("name", 1, 128)}


@dataclass(frozen=True)
class Reset(Message):
    KIND: ClassVar[str] = "reset"


@dataclass(frozen=True)
class Info(Message):
    KIND: ClassVar[str] = "info"


@dataclass(frozen=True)
class Bye(Message):
    KIND: ClassVar[str] = "bye"


# --- replies ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ok(Message):
    """A successful reply; its fields depend on the request (checked by the client that asked)."""

    value: dict
    KIND: ClassVar[str] = "ok"
    SPEC: ClassVar[dict[str, tuple]] = {"value": ("map",)}


@dataclass(frozen=True)
class Err(Message):
    """A refused request: ``error`` names the error class (``busy``, ``race``, ``timeout``...)."""

    error: str
    message: str
    KIND: ClassVar[str] = "err"
    SPEC: ClassVar[dict[str, tuple]] = {"error": ("name", 1, 64), "message": ("str", 0, 4096)}


REQUESTS = {cls.KIND: cls for cls in (Hello, Alloc, Free, Write, Read, Run, Timing, Bitstream, Reset, Info, Bye)}
REPLIES = {cls.KIND: cls for cls in (Ok, Err)}


def frame(body: bytes) -> bytes:
    """``body`` with its length prefix."""
    return HEADER.pack(len(body)) + body


def _msgpack() -> Any:
    """The msgpack module, or VTAError naming the extra that installs it."""
    try:
        import msgpack
    except ImportError:
        raise VTAError('vta rpc needs the msgpack package: pip install ".[rpc]" from the pynq-vta checkout') from None
    return msgpack


def encode(msg: Message) -> bytes:
    """The framed msgpack bytes of ``msg``."""
    return frame(_msgpack().packb([VERSION, msg.KIND, msg.to_wire()], use_bin_type=True))


def _ext(code: int, data: bytes) -> Any:
    raise RemoteError(f"rpc frame: msgpack extension type {code} is not part of the protocol")


def decode(body: bytes, kinds: dict[str, type[Message]]) -> Message:
    """The message in a frame body, or RemoteError naming what is wrong with it (never anything else)."""
    msgpack = _msgpack()
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True, ext_hook=_ext, **_LIMITS)
    except RemoteError:
        raise
    except Exception as e:  # msgpack raises several unrelated classes for malformed input
        raise RemoteError(f"rpc frame: not a msgpack message ({type(e).__name__})") from None
    if not (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[1], str) and isinstance(obj[2], dict)):
        raise RemoteError("rpc frame: expected [version, kind, fields]")
    version, kind, values = obj
    if version != VERSION or isinstance(version, bool):
        raise RemoteError(f"rpc frame: protocol version {version!r} is not supported (this side speaks {VERSION}); "
                          "run the same pynq-vta release on both sides")
    cls = kinds.get(kind)
    if cls is None:
        raise RemoteError(f"rpc frame: unknown message kind {kind[:40]!r}; expected one of {', '.join(kinds)}")
    if set(values) != set(cls.SPEC):
        raise RemoteError(f"rpc {kind}: fields must be exactly {sorted(cls.SPEC)}, got {sorted(map(str, values))[:12]}")
    return cls(**{name: _check(kind, name, values[name], spec) for name, spec in cls.SPEC.items()})


def _check(kind: str, name: str, value: Any, spec: tuple) -> Any:
    where = f"rpc {kind}.{name}"
    t = spec[0]
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not spec[1] <= value <= spec[2]:
            raise RemoteError(f"{where}: expected an integer in {spec[1]}..{spec[2]}, got {_short(value)}")
        return value
    if t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not spec[1] < value <= spec[2]:
            raise RemoteError(f"{where}: expected a number of seconds in ({spec[1]}, {spec[2]}], got {_short(value)}")
        return float(value)
    if t in ("str", "name"):
        if not isinstance(value, str) or not spec[1] <= len(value) <= spec[2]:
            raise RemoteError(f"{where}: expected a string of {spec[1]}..{spec[2]} characters, got {_short(value)}")
        if t == "name" and not set(value) <= _NAME_CHARS:
            raise RemoteError(f"{where}: only letters, digits and ._-+@:/() are allowed, got {value[:40]!r}")
        return value
    if t == "map":
        if not isinstance(value, dict):
            raise RemoteError(f"{where}: expected a map, got {_short(value)}")
        return value
    if t == "writes":
        if not isinstance(value, list) or len(value) > MAX_WRITES:
            raise RemoteError(f"{where}: expected a list of at most {MAX_WRITES} [handle, offset, bytes] copies")
        out = []
        for i, w in enumerate(value):
            if not (isinstance(w, list) and len(w) == 3 and isinstance(w[2], bytes)):
                raise RemoteError(f"{where}[{i}]: expected [handle, offset, bytes]")
            handle = _check(kind, f"{name}[{i}].handle", w[0], _uint(0, U64))
            offset = _check(kind, f"{name}[{i}].offset", w[1], _uint(0, MAX_XFER))
            out.append((handle, offset, w[2]))
        return tuple(out)
    raise AssertionError(f"unknown field type {t}")


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
