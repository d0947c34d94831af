"""Released VTA bitstreams: manifest, ``.bit`` header parser, cache with verified download, programming.

The names are imported on first use (PEP 562), so ``vta --help`` does not load what it does not need.
"""

from __future__ import annotations

import importlib

__all__ = [
    "RELEASES", "BitHeader", "BitstreamRecord", "VerifiedBitstream", "cache_path", "expected_for", "fetch",
    "lookup", "parse_header", "program", "verify",
]
_HOME = {"BitHeader": "header", "parse_header": "header", "RELEASES": "manifest", "BitstreamRecord": "manifest",
         "expected_for": "manifest", "lookup": "manifest", "program": "program", "VerifiedBitstream": "store",
         "cache_path": "store", "fetch": "store", "verify": "store"}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
