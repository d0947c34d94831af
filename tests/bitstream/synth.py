"""Synthetic bitstream files in the real Xilinx .bit format, so no test needs the 4 MB releases."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

from vta.bitstream.manifest import BitstreamRecord
from vta.config import Environment

DESIGN = "vta_wrapper;UserID=0XFFFFFFFF;Version=2018.3"
DATA = bytes(range(256)) * 4
HEADER_BYTES = 107  # header size of the released 2018.3 files: 4045671 - 4045564 (spec §11)


def _field(key: bytes, text: str) -> bytes:
    raw = text.encode() + b"\0"
    return key + struct.pack(">H", len(raw)) + raw


def make_bit(data: bytes = DATA, *, design: str = DESIGN, part: str = "7z020clg484", date: str = "2020/06/30",
             time: str = "18:11:16", data_length: int | None = None) -> bytes:
    """A .bit file: preamble, fields a-d, then 'e' with ``data_length`` (default: the true length) and data."""
    length = len(data) if data_length is None else data_length
    return (bytes.fromhex("00090ff00ff00ff00ff0000001") + _field(b"a", design) + _field(b"b", part)
            + _field(b"c", date) + _field(b"d", time) + b"e" + struct.pack(">I", length) + data)


def record_for(blob: bytes, env: Environment, **changes: object) -> BitstreamRecord:
    """A manifest record describing ``blob`` as the release for ``env`` (a default-header synthetic file)."""
    record = BitstreamRecord(env.TARGET, env.HW_VER, env.BITSTREAM, ".bit", len(blob), hashlib.sha256(blob).hexdigest(),
                             "vta_wrapper", "2018.3", "7z020clg484", "2020/06/30", "18:11:16",
                             len(blob) - HEADER_BYTES)
    return dataclasses.replace(record, **changes)
