"""The cffi builder for the driver's C code, shared by setup.py (install time) and _ffi.py (first use)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from cffi import FFI

__all__ = ["C_SOURCE", "make_builder", "source_hash"]

C_SOURCE = Path(__file__).resolve().with_name("vta_driver.c")


def _cdefs() -> tuple[str, str]:
    """(module name, cdefs) loaded by path, so setup.py can use this file without importing vta."""
    spec = importlib.util.spec_from_file_location("_vta_driver_cdefs", C_SOURCE.with_name("_cdefs.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MODULE_NAME, mod.CDEFS


def make_builder() -> FFI:
    """An FFI builder whose module embeds vta_driver.c; the struct is opaque to Python (API mode)."""
    name, cdefs = _cdefs()
    source = C_SOURCE.read_text() + (
        f'\nconst char *vta_driver_build(void) {{ return "{source_hash()}"; }}\n')
    ffibuilder = FFI()
    ffibuilder.cdef(cdefs)
    ffibuilder.set_source(name, source, extra_compile_args=["-O2", "-std=c99"])
    return ffibuilder


def source_hash() -> str:
    """Identifies one build: the C source, the declarations and the interpreter's ABI."""
    cdefs = _cdefs()[1]
    h = hashlib.sha256(C_SOURCE.read_bytes() + cdefs.encode() + sys.implementation.cache_tag.encode())
    return h.hexdigest()[:16]
