"""The cffi builder for the driver's C code, shared by setup.py (install time) and _ffi.py (first use)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from cffi import FFI

__all__ = ["C_SOURCE", "c_source", "make_builder", "source_hash"]

C_SOURCE = Path(__file__).resolve().with_name("vta_driver.c")


def _load(name: str) -> ModuleType:
    """A sibling module loaded by path, so setup.py can use this file without importing vta."""
    spec = importlib.util.spec_from_file_location(f"_vta_driver_{name}", C_SOURCE.with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cdefs() -> tuple[str, str]:
    """(module name, cdefs) of the extension."""
    mod = _load("_cdefs")
    return mod.MODULE_NAME, mod.CDEFS


def c_source() -> str:
    """What is compiled: the register constants generated from regmap.py, the report struct, vta_driver.c."""
    return _load("regmap").c_header() + "#include <stdint.h>\n" + _load("_cdefs").REPORT_STRUCT + C_SOURCE.read_text()


def make_builder() -> FFI:
    """An FFI builder whose module embeds vta_driver.c; the struct is opaque to Python (API mode)."""
    name, cdefs = _cdefs()
    source = c_source() + (
        f'\nconst char *vta_driver_build(void) {{ return "{source_hash()}"; }}\n')
    ffibuilder = FFI()
    ffibuilder.cdef(cdefs)
    ffibuilder.set_source(name, source, extra_compile_args=["-O2", "-std=c99"])
    return ffibuilder


def source_hash() -> str:
    """Identifies one build: the C source, the declarations and the interpreter's ABI."""
    cdefs = _cdefs()[1]
    h = hashlib.sha256(c_source().encode() + cdefs.encode() + sys.implementation.cache_tag.encode())
    return h.hexdigest()[:16]
