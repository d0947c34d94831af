"""Parser for the header of a Xilinx ``.bit`` file, so a bitstream can be identified without a board.

Layout (spec §11): a 2-byte length (9) and 9-byte preamble, a 2-byte length (1), then keyed
fields 'a' design, 'b' part, 'c' date, 'd' time, each a 1-byte key, a 2-byte big-endian length
and a NUL-terminated string; then key 'e', a 4-byte big-endian length and the configuration data,
which runs to the end of the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vta.errors import BitstreamError

__all__ = ["BitHeader", "parse_header"]

_PREAMBLE = bytes.fromhex("0009" "0ff00ff00ff00ff000" "0001")
_FIELDS = (("a", "design name"), ("b", "part"), ("c", "date"), ("d", "time"))


@dataclass(frozen=True)
class BitHeader:
    """The identifying fields of a ``.bit`` file and where its configuration data lies.

    ``design`` is the part of field 'a' before the first ``;``; Vivado appends ``UserID=`` and
    ``Version=`` (the tool version) attributes, kept in ``user_id`` and ``tool_version``.
    """

    design: str
    user_id: str | None
    tool_version: str | None
    part: str
    date: str
    time: str
    data_offset: int
    data_length: int


def _take(data: bytes, offset: int, count: int, source: str, what: str) -> bytes:
    """``count`` bytes at ``offset``; BitstreamError naming the field if the file ends first."""
    if offset + count > len(data):
        raise BitstreamError(
            f"{source}: truncated .bit header: {what} needs {count} byte(s) at byte offset {offset}, "
            f"but the file ends at byte offset {len(data)}"
        )
    return data[offset:offset + count]


def _key(data: bytes, offset: int, key: str, source: str) -> int:
    got = _take(data, offset, 1, source, f"field key {key!r}")[0]
    if got != ord(key):
        raise BitstreamError(
            f"{source}: malformed .bit header: expected field key {key!r} (0x{ord(key):02x}) at byte offset "
            f"{offset}, got 0x{got:02x}"
        )
    return offset + 1


def _string(data: bytes, offset: int, key: str, what: str, source: str) -> tuple[str, int]:
    """One length-prefixed NUL-terminated field; returns the text and the offset after it."""
    (length,) = struct.unpack(">H", _take(data, offset, 2, source, f"the length of field {key!r} ({what})"))
    offset += 2
    raw = _take(data, offset, length, source, f"field {key!r} ({what})")
    if length == 0 or raw[-1] != 0:
        last = f"0x{raw[-1]:02x}" if raw else "nothing (length 0)"
        raise BitstreamError(
            f"{source}: malformed .bit header: field {key!r} ({what}) at byte offset {offset} must end with a "
            f"NUL byte, got {last}"
        )
    try:
        text = raw[:-1].decode("ascii")
    except UnicodeDecodeError as e:
        raise BitstreamError(
            f"{source}: malformed .bit header: field {key!r} ({what}) at byte offset {offset + e.start} "
            f"is not ASCII text (byte 0x{raw[e.start]:02x})"
        ) from None
    return text, offset + length


def _design_attributes(field: str) -> tuple[str, str | None, str | None]:
    """Split ``vta_wrapper;UserID=0XFFFFFFFF;Version=2018.3`` into design, user id, tool version."""
    design, *attributes = field.split(";")
    pairs = dict(item.split("=", 1) for item in attributes if "=" in item)
    return design, pairs.get("UserID"), pairs.get("Version")


def parse_header(data: bytes, source: str = "bitstream") -> BitHeader:
    """Parse the header of a whole ``.bit`` file and check its data length against the file size.

    Parameters
    ----------
    data : bytes
        The complete file contents (the data length field is checked against them).
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    BitHeader

    Raises
    ------
    BitstreamError
        The bytes are not a ``.bit`` file, the header is truncated or malformed, or the file holds
        fewer or more data bytes than field 'e' declares; the message gives the byte offset.

    Example
    -------
    >>> parse_header(Path("1x16_i8w8a32_15_15_18_17.bit").read_bytes()).part
    '7z020clg484'
    """
    for offset, (got, want) in enumerate(zip(data[:len(_PREAMBLE)], _PREAMBLE)):
        if got != want:
            raise BitstreamError(
                f"{source}: not a Xilinx .bit file: byte offset {offset} is 0x{got:02x}, expected 0x{want:02x} "
                f"(the {len(_PREAMBLE)}-byte .bit preamble {_PREAMBLE.hex()})"
            )
    offset = len(_take(data, 0, len(_PREAMBLE), source, "the .bit preamble"))
    values = []
    for key, what in _FIELDS:
        offset = _key(data, offset, key, source)
        text, offset = _string(data, offset, key, what, source)
        values.append(text)
    offset = _key(data, offset, "e", source)
    (length,) = struct.unpack(">I", _take(data, offset, 4, source, "the data length of field 'e'"))
    offset += 4
    available = len(data) - offset
    if available != length:
        problem = "truncated .bit file" if available < length else "trailing bytes after the .bit data"
        raise BitstreamError(
            f"{source}: {problem}: field 'e' declares {length} data bytes from byte offset {offset} "
            f"(file size {offset + length}), but the file has {available} data bytes (file size {len(data)})"
        )
    design, user_id, tool_version = _design_attributes(values[0])
    return BitHeader(design, user_id, tool_version, values[1], values[2], values[3], offset, length)
