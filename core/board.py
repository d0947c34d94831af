"""Which board is this? Pynq board detection that needs no configuration and survives ``sudo``.

The sources, most authoritative first, are the ones PYNQ itself uses: the board name a PYNQ
image writes into the device tree (``/chosen/pynq_board``), PYNQ's ``BOARD`` environment
variable, the same variable in ``/etc/environment`` (``sudo`` resets the environment, not that
file), and finally the device tree's ``model`` string. Every path and the environment are
parameters, so tests run detection against fake device-tree files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BOARD_FPGA_TARGETS", "BOARD_TARGETS", "DT_ROOTS", "ETC_ENVIRONMENT", "DetectedBoard", "TargetChoice",
    "detect_board",
]

# The two places Linux exposes the flattened device tree (/proc/device-tree links to the second).
DT_ROOTS: tuple[Path, ...] = (Path("/proc/device-tree"), Path("/sys/firmware/devicetree/base"))
ETC_ENVIRONMENT = Path("/etc/environment")

# PYNQ board name (lower case, as PYNQ spells it) -> VTA TARGET. Pynq-Z2 carries the same
# xc7z020 part and DDR as the Pynq-Z1, so the pynq bitstreams run on it unchanged.
BOARD_TARGETS: dict[str, str] = {
    "pynq-z1": "pynq", "pynq-z2": "pynq",
    "ultra96": "ultra96", "ultra96v2": "ultra96", "ultra96-v2": "ultra96",
    "zcu104": "zcu104",
}


@dataclass(frozen=True)
class DetectedBoard:
    """A board found on this machine: its name, the VTA TARGET for it (None: no VTA target), and where it was read."""

    name: str
    target: str | None
    source: str

    @property
    def description(self) -> str:
        return f"{self.source} reads {self.name!r}"


# Targets that are a physical board: a detected board of another target contradicts them.
BOARD_FPGA_TARGETS = ("pynq", "ultra96", "zcu104", "de10nano")


@dataclass(frozen=True)
class TargetChoice:
    """How the default environment's TARGET was chosen: the value, who chose it, and why.

    ``source`` is ``VTA_TARGET``, ``VTA_CONFIG`` (the file's TARGET), ``detected`` (a Pynq
    board's target) or ``default`` (no board: the simulator).
    """

    target: str
    source: str
    reason: str
    board: DetectedBoard | None = None

    def board_advice(self) -> str:
        """What to set so that TARGET names a board, for errors raised when a board target is needed."""
        if self.source in ("VTA_TARGET", "VTA_CONFIG"):
            fix = f"unset {self.source} to use the detected board" if self.board and self.board.target else \
                f"set VTA_TARGET to one of {', '.join(BOARD_FPGA_TARGETS[:3])}"
        else:
            fix = (f"set VTA_TARGET to one of {', '.join(BOARD_FPGA_TARGETS[:3])} (sudo drops the environment: "
                   "pass it on the command line, e.g. `sudo VTA_TARGET=pynq vta program`)")
        return f"TARGET is {self.target!r} because {self.reason}; {fix}"


def _read_dt(path: Path) -> str | None:
    """A device-tree string property (NUL-terminated), or None if absent or unreadable."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def _etc_board(path: Path) -> str | None:
    """``BOARD=...`` from an /etc/environment-style file (``KEY=value`` lines, optional quotes)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == "BOARD":
            return value.strip().strip("'\"") or None
    return None


def _from_model(model: str) -> str | None:
    """The board name a device-tree model string mentions (e.g. 'Digilent Pynq-Z1 board'), if any."""
    squeezed = model.lower().replace("_", "-")
    for name in sorted(BOARD_TARGETS, key=len, reverse=True):
        if name in squeezed:
            return name
    return None


def detect_board(environ: Mapping[str, str] | None = None, *, dt_roots: Sequence[Path] = DT_ROOTS,
                 etc_environment: Path = ETC_ENVIRONMENT) -> DetectedBoard | None:
    """The board this runs on, or None when nothing says it is a PYNQ board.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read ``BOARD`` from (default: ``os.environ``).
    dt_roots : sequence of Path
        Device-tree roots to read ``chosen/pynq_board`` and ``model`` under.
    etc_environment : Path
        The system environment file PYNQ writes ``BOARD=`` into.

    Example
    -------
    >>> detect_board({}, dt_roots=(), etc_environment=Path("/nonexistent")) is None
    True
    """
    environ = os.environ if environ is None else environ
    candidates: list[tuple[str | None, str]] = [
        (_read_dt(root / "chosen" / "pynq_board"), str(root / "chosen" / "pynq_board")) for root in dt_roots]
    candidates.append((environ.get("BOARD", "").strip() or None, "the BOARD environment variable"))
    candidates.append((_etc_board(etc_environment), f"BOARD in {etc_environment}"))
    for name, source in candidates:
        if name and name.lower() != "unknown":
            return DetectedBoard(name, BOARD_TARGETS.get(name.lower()), source)
    for root in dt_roots:
        model = _read_dt(root / "model")
        if model is not None and (name := _from_model(model)) is not None:
            return DetectedBoard(model, BOARD_TARGETS[name], str(root / "model"))
    return None
