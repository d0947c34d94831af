"""A fake PYNQ 3.x environment in a temporary directory, and helpers that run the board scripts in it.

The fake has what the scripts rely on from a stock image: a Python virtual environment with
pip, numpy and cffi (linked from the test interpreter's site-packages rather than downloaded),
an installed ``pynq`` 3.x distribution (metadata and an empty package: nothing here imports it),
and an XRT set-up script that logs each time it is sourced. The scripts read its paths from
PYNQ_VTA_VENV and PYNQ_VTA_XRT_SETUP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "board_scripts"
# What a PYNQ 3.x image's environment already has that pynq-vta needs (pip installs nothing else).
SHARED = ("pip", "numpy", "cffi", "_cffi_backend", "pycparser")


@dataclass(frozen=True)
class FakePynq:
    """Paths of one fake PYNQ environment and the environment variables that point the scripts at it."""

    root: Path
    venv: Path
    xrt_setup: Path
    env: dict[str, str]

    def run(self, script: str, *args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``board_scripts/<script>`` with bash in this environment (plus ``env``); stdout and stderr as text."""
        proc = subprocess.run(["bash", str(SCRIPTS / script), *args], env={**self.env, **(env or {})}, cwd=self.root,
                              text=True, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc


def _link_shared_packages(dest: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir()
    for entry in site.iterdir():
        stem = entry.name.split("-")[0].split(".")[0]
        if stem in SHARED:
            (dest / entry.name).symlink_to(entry)


def _fake_pynq_distribution(site: Path, version: str) -> None:
    (site / "pynq").mkdir()
    (site / "pynq" / "__init__.py").write_text(f'"""Stand-in for PYNQ {version}."""\n__version__ = "{version}"\n')
    info = site / f"pynq-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pynq\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def make_fake_pynq(root: Path, pynq_version: str = "3.0.1") -> FakePynq:
    """Create the fake image's environment under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    venv = root / "pynq-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python3"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    _link_shared_packages(root / "image-packages")
    (site / "image-packages.pth").write_text(f"{root / 'image-packages'}\n")
    _fake_pynq_distribution(site, pynq_version)
    xrt = root / "xrt_setup.sh"
    xrt.write_text(f"export XILINX_XRT=/usr\necho sourced >> {root / 'xrt-sourced.log'}\n")
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VTA_", "PYNQ_VTA_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PYNQ_VTA_VENV=str(venv), PYNQ_VTA_XRT_SETUP=str(xrt), HOME=str(home), VTA_CACHE_PATH=str(root / "cache"),
               PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return FakePynq(root, venv, xrt, env)


@pytest.fixture(scope="session")
def fake_pynq(tmp_path_factory) -> FakePynq:
    """One fake image for the tests that leave it unchanged (dry runs, refusals)."""
    return make_fake_pynq(tmp_path_factory.mktemp("fake-pynq") / "image")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout, built from a copy of it so that the build leaves nothing behind here."""
    src = tmp_path_factory.mktemp("checkout") / "pynq-vta"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "*.so",
                                                              "__pycache__", ".*_cache", ".hypothesis"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                           str(src)], capture_output=True, text=True)
    if proc.returncode:  # e.g. no network for the build requirements (setuptools, wheel, cffi)
        pytest.fail(f"pip wheel {src} failed with exit status {proc.returncode}:\n{proc.stderr}")
    (built,) = out.glob("pynq_vta-*.whl")
    return built


def shellcheck() -> str:
    """The shellcheck executable, or skip the test saying how to get it."""
    path = shutil.which("shellcheck")
    if path is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    return path
