"""The checkout's layout: nothing at its root may shadow the installed ``vta`` package."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_folder_at_the_checkout_root_is_named_like_the_import_package():
    # Python puts the working directory first on sys.path for `python -c` and notebooks, so a
    # `vta/` folder there would hide the installed package (and its subpackages) from the user.
    assert not (ROOT / "vta").exists()


def test_the_package_imports_whole_from_the_checkout_root():
    code = "import vta.driver, vta.sim, vta.runtime, vta.compiler, vta.bitstream; print(vta.__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "vta"


def test_the_package_is_marked_as_typed():
    assert importlib.resources.files("vta").joinpath("py.typed").is_file()


def test_vta_compile_is_the_network_compiler():
    import vta
    from vta.compiler.graph import compile_network

    assert vta.compile is compile_network
