import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.bitstream.synth import DATA, HEADER_BYTES, make_bit
from vta.bitstream.header import BitHeader, parse_header
from vta.errors import BitstreamError


def test_parse_synthetic_release_header():
    assert parse_header(make_bit()) == BitHeader("vta_wrapper", "0XFFFFFFFF", "2018.3", "7z020clg484",
                                                 "2020/06/30", "18:11:16", HEADER_BYTES, len(DATA))


def test_real_file_size_gives_real_data_length():
    """A 4045671-byte file with the release's header fields holds 4045564 data bytes (spec §11)."""
    blob = make_bit(bytes(4045564))
    assert len(blob) == 4045671
    assert parse_header(blob).data_length == 4045564


def test_design_without_attributes():
    h = parse_header(make_bit(design="my_vta"))
    assert (h.design, h.user_id, h.tool_version) == ("my_vta", None, None)


def _patched(offset: int, value: bytes) -> bytes:
    blob = bytearray(make_bit())
    blob[offset:offset + len(value)] = value
    return bytes(blob)


# Offsets in the default synthetic header: 'a' key 13, design 16..60, 'b' 61, part 64..75,
# 'c' 76, 'd' 90, 'e' 102, data length 103..106, data from 107.
@pytest.mark.parametrize(("blob", "message"), [
    (b"", r"^x\.bit: truncated \.bit header: the \.bit preamble needs 13 byte\(s\) at byte offset 0, "
          r"but the file ends at byte offset 0$"),
    (_patched(3, b"\x00"), r"^x\.bit: not a Xilinx \.bit file: byte offset 3 is 0x00, expected 0xf0 "
                           r"\(the 13-byte \.bit preamble 00090ff00ff00ff00ff0000001\)$"),
    (_patched(61, b"x"), r"^x\.bit: malformed \.bit header: expected field key 'b' \(0x62\) at byte offset 61, "
                         r"got 0x78$"),
    (_patched(60, b"!"), r"^x\.bit: malformed \.bit header: field 'a' \(design name\) at byte offset 16 must end "
                         r"with a NUL byte, got 0x21$"),
    (_patched(64, b"\xff"), r"^x\.bit: malformed \.bit header: field 'b' \(part\) at byte offset 64 is not ASCII "
                            r"text \(byte 0xff\)$"),
    (_patched(77, b"\x00\x00"), r"^x\.bit: malformed \.bit header: field 'c' \(date\) at byte offset 79 must end "
                                r"with a NUL byte, got nothing \(length 0\)$"),
    (make_bit()[:40], r"^x\.bit: truncated \.bit header: field 'a' \(design name\) needs 45 byte\(s\) at byte "
                      r"offset 16, but the file ends at byte offset 40$"),
    (make_bit()[:105], r"^x\.bit: truncated \.bit header: the data length of field 'e' needs 4 byte\(s\) at "
                       r"byte offset 103, but the file ends at byte offset 105$"),
    (make_bit()[:-1], r"^x\.bit: truncated \.bit file: field 'e' declares 1024 data bytes from byte offset 107 "
                      r"\(file size 1131\), but the file has 1023 data bytes \(file size 1130\)$"),
    (make_bit() + b"\0", r"^x\.bit: trailing bytes after the \.bit data: field 'e' declares 1024 data bytes from "
                         r"byte offset 107 \(file size 1131\), but the file has 1025 data bytes \(file size 1132\)$"),
    (make_bit(data_length=2**32 - 1), r"^x\.bit: truncated \.bit file: field 'e' declares 4294967295 data bytes"),
])
def test_malformed_headers(blob, message):
    with pytest.raises(BitstreamError, match=message):
        parse_header(blob, "x.bit")


def test_every_truncation_is_refused():
    blob = make_bit(b"\x01\x02")
    for n in range(len(blob)):
        with pytest.raises(BitstreamError, match=rf"byte offset {n}\b|file size {n}\)"):
            parse_header(blob[:n])


def test_data_length_field_is_big_endian():
    blob = make_bit(bytes(258))
    assert blob[103:107] == struct.pack(">I", 258)
    assert parse_header(blob).data_length == 258


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_bitstream_error(blob):
    try:
        header = parse_header(blob)
    except BitstreamError:
        return
    assert header.data_offset + header.data_length == len(blob)


@given(st.integers(0, HEADER_BYTES - 1), st.integers(0, 255))
def test_corrupted_header_byte_raises_only_bitstream_error(offset, value):
    with contextlib.suppress(BitstreamError):
        parse_header(_patched(offset, bytes([value])))
