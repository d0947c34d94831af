"""Lazy loading of the compiled driver, and the one place C return codes become exceptions.

The extension is compiled at install time by setup.py when a C compiler is present. When it
is missing or stale (an editable install whose C source changed, or an install made without a
compiler) it is built on first use into a per-user cache directory, keyed by a hash of the
source, so the simulator-only install never needs a compiler and the board path always runs
the C code that is in the tree.
"""

from __future__ import annotations

import errno as errno_mod
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from vta.errors import DeviceError

__all__ = ["build_into", "cache_root", "check", "load"]

_LOADED: list[ModuleType] = []

_HINTS = {
    errno_mod.EACCES: " (mapping {path} needs root: run with sudo, or as a user with read-write access to it)",
    errno_mod.EPERM: " (mapping {path} needs root, and a kernel that allows /dev/mem access to the FPGA range)",
    errno_mod.ENOENT: " (no such memory device: pass the board's /dev/mem or an emulator file)",
}


def check(rc: int, func: str, what: str) -> int:
    """Return ``rc`` if it is not negative, else raise DeviceError naming ``func`` and the errno."""
    if rc >= 0:
        return rc
    err = -rc
    hint = _HINTS.get(err, "").format(path=what)
    raise DeviceError(f"{func}() failed for {what}: errno {err} ({errno_mod.errorcode.get(err, '?')}: "
                      f"{os.strerror(err)}){hint}")


def cache_root() -> Path:
    """Where first-use builds go: $XDG_CACHE_HOME/pynq-vta, else ~/.cache/pynq-vta, else a temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = Path(base) / "pynq-vta" / "driver"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"pynq-vta-{os.getuid()}" / "driver"
        root.mkdir(parents=True, exist_ok=True)
    return root


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_into(root: Path) -> ModuleType:
    """Compile the driver into ``root/<hash>`` (once) and import it; DeviceError if it cannot be built."""
    from cffi import VerificationError

    from vta.driver._build import make_builder, source_hash
    from vta.driver._cdefs import MODULE_NAME

    target = root / source_hash()
    found = sorted(target.rglob("_vta_driver*.so")) if target.exists() else []
    if not found:
        work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            built = Path(make_builder().compile(tmpdir=str(work)))
            target.mkdir(exist_ok=True)
            os.replace(built, target / built.name)
        except (VerificationError, OSError) as e:
            raise DeviceError(
                f"cannot build the VTA board driver (driver/vta_driver.c) in {root}: {e}. The driver needs a C "
                "compiler: install gcc (Debian/Ubuntu/PYNQ: sudo apt install build-essential) and retry"
            ) from e
        except Exception as e:  # cffi raises a bare Exception when setuptools/distutils is missing (Python >= 3.12)
            raise DeviceError(
                f"cannot build the VTA board driver (driver/vta_driver.c) in {root}: {type(e).__name__}: {e}. "
                "Building it needs setuptools (pip install setuptools; Python 3.12 and later no longer ship "
                "distutils) and a C compiler (sudo apt install build-essential)"
            ) from e
        finally:
            shutil.rmtree(work, ignore_errors=True)
        found = [target / built.name]
    return _import_file(found[0], MODULE_NAME)


def _prebuilt() -> ModuleType | None:
    """The extension compiled at install time, if present and built from the current source."""
    try:
        from vta.driver import _vta_driver
    except ImportError:
        return None
    from vta.driver._build import C_SOURCE, source_hash

    if C_SOURCE.exists() and _vta_driver.ffi.string(_vta_driver.lib.vta_driver_build()).decode() != source_hash():
        return None
    return _vta_driver


def load() -> ModuleType:
    """The compiled driver module (with ``ffi`` and ``lib``), built on first use if needed."""
    if not _LOADED:
        module = _prebuilt() or build_into(cache_root())
        sys.modules[module.__name__] = module
        _LOADED.append(module)
    return _LOADED[0]
