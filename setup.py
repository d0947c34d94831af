"""Compile the board driver's C code (cffi API mode) at install time; the rest is in pyproject.toml.

The extension is optional: without a C compiler the package still installs (the simulator
needs none), and ``vta.driver`` builds the extension on first use into a per-user cache, or
says which compiler to install.
"""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "driver"))
from _build import make_builder


def driver_extension():
    ext = make_builder().distutils_extension(tmpdir="build/cffi")
    ext.optional = True
    return ext


setup(ext_modules=[driver_extension()])
