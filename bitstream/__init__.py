"""Released VTA bitstreams: manifest, ``.bit`` header parser, cache with verified download, programming."""

from __future__ import annotations

from vta.bitstream.header import BitHeader, parse_header
from vta.bitstream.manifest import RELEASES, BitstreamRecord, expected_for, lookup
from vta.bitstream.program import program
from vta.bitstream.store import VerifiedBitstream, cache_path, fetch, verify

__all__ = [
    "RELEASES", "BitHeader", "BitstreamRecord", "VerifiedBitstream", "cache_path", "expected_for", "fetch",
    "lookup", "parse_header", "program", "verify",
]
