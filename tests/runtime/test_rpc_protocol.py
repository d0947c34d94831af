"""The rpc wire format: every message round-trips, and every field is checked for type and range on decode."""

from __future__ import annotations

import sys

import msgpack
import pytest

from vta.config import MAX_XFER
from vta.errors import RemoteError
from vta.runtime.rpc import protocol

EXAMPLES = [
    protocol.Hello("token", "notebook on laptop"), protocol.Alloc(4096, -1), protocol.Alloc(1, 0x10000000),
    protocol.Free(7), protocol.Write(((1, 0, b"abc"), (2, 5, b""))), protocol.Read((), 3, 0, 16),
    protocol.Run(((1, 0, b"\x00" * 32),), 4096, 2, 1.5), protocol.Timing(0),
    protocol.Bitstream("1x16_i8w8a32_15_15_18_17"), protocol.Reset(), protocol.Info(), protocol.Bye(),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.KIND)
def test_requests_round_trip(msg):
    body = protocol.encode(msg)
    assert protocol.HEADER.unpack(body[:4])[0] == len(body) - 4
    assert protocol.decode(body[4:], protocol.REQUESTS) == msg


def _body(kind, fields, version=protocol.VERSION):
    return msgpack.packb([version, kind, fields], use_bin_type=True)


@pytest.mark.parametrize(("kind", "fields", "message"), [
    ("alloc", {"nbytes": True, "phys": -1}, r"rpc alloc\.nbytes: expected an integer in 1\.\.33554432, got bool True"),
    ("alloc", {"nbytes": MAX_XFER + 1, "phys": -1}, r"rpc alloc\.nbytes: expected an integer in 1\.\.33554432"),
    ("alloc", {"nbytes": 4096, "phys": 1 << 40}, r"rpc alloc\.phys: expected an integer in -1\.\.4294967295"),
    ("alloc", {"nbytes": 4096}, r"rpc alloc: fields must be exactly \['nbytes', 'phys'\], got \['nbytes'\]"),
    ("alloc", {"nbytes": 4096, "phys": -1, "code": "x"}, r"rpc alloc: fields must be exactly"),
    ("free", {"handle": -1}, r"rpc free\.handle: expected an integer in 0\.\."),
    ("run", {"writes": [], "insn_phys": 0, "insn_count": 1, "timeout_s": 0.0},
     r"rpc run\.timeout_s: expected a number of seconds in \(0\.0, 3600\.0\], got float 0\.0"),
    ("run", {"writes": [], "insn_phys": 0, "insn_count": 1, "timeout_s": float("nan")}, r"rpc run\.timeout_s"),
    ("run", {"writes": [[1, 0, "text"]], "insn_phys": 0, "insn_count": 1, "timeout_s": 1.0},
     r"rpc run\.writes\[0\]: expected \[handle, offset, bytes\]"),
    ("write", {"writes": [[1, -5, b"x"]]}, r"rpc write\.writes\[0\]\.offset: expected an integer in 0\.\."),
    ("write", {"writes": [[1, 0, b""]] * (protocol.MAX_WRITES + 1)}, r"rpc write\.writes: expected a list of at most"),
    ("hello", {"token": "t", "client": "bad\nname"}, r"rpc hello\.client: only letters, digits"),
    ("hello", {"token": "t" * 300, "client": "x"}, r"rpc hello\.token: expected a string of 0\.\.256 characters"),
    ("bitstream", {"name": "../../etc/passwd\x00"}, r"rpc bitstream\.name: only letters"),
    ("shell", {}, r"rpc frame: unknown message kind 'shell'; expected one of hello, alloc"),
])
def test_field_checks(kind, fields, message):
    with pytest.raises(RemoteError, match=message):
        protocol.decode(_body(kind, fields), protocol.REQUESTS)


def test_envelope_checks():
    speaks = rf"\(this side speaks {protocol.VERSION}\); run the same pynq-vta release on both sides$"
    with pytest.raises(RemoteError, match=r"protocol version 99 is not supported " + speaks):
        protocol.decode(_body("info", {}, version=99), protocol.REQUESTS)
    with pytest.raises(RemoteError, match=r"expected \[version, kind, fields\]"):
        protocol.decode(msgpack.packb({"kind": "info"}), protocol.REQUESTS)
    with pytest.raises(RemoteError, match=r"msgpack extension type 5 is not part of the protocol"):
        protocol.decode(msgpack.packb([1, "info", {"x": msgpack.ExtType(5, b"")}]), protocol.REQUESTS)
    with pytest.raises(RemoteError, match=r"not a msgpack message"):
        protocol.decode(b"\xc1", protocol.REQUESTS)
    with pytest.raises(RemoteError, match=r"not a msgpack message \(ValueError\)"):
        protocol.decode(msgpack.packb([1, "write", {"writes": [None] * 100_000}]), protocol.REQUESTS)
    with pytest.raises(RemoteError, match=r"unknown message kind 'run'; expected one of ok, err"):
        protocol.decode(_body("run", {}), protocol.REPLIES)


def test_frames_are_bounded_to_one_full_buffer():
    assert MAX_XFER < protocol.MAX_FRAME <= MAX_XFER + (1 << 20)
    assert protocol.MAX_HELLO_FRAME == 4096


def test_missing_msgpack_names_the_extra(monkeypatch):
    from vta.errors import VTAError

    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(VTAError, match=r'^vta rpc needs the msgpack package: pip install "\.\[rpc\]" from the '
                                       r'pynq-vta checkout$'):
        protocol.encode(protocol.Info())
