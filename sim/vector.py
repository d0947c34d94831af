"""Golden-vector directories (``../shared/vectors`` format): load, run, compare, export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.config import Environment, get_env
from vta.errors import ProgramError, VTAError
from vta.sim.device import RunResult, SimDevice

__all__ = ["Vector", "VectorError", "load_vector", "run_vector"]


class VectorError(VTAError):
    """A vector directory is missing files or has inconsistent metadata."""

    exit_code = 2


@dataclass(frozen=True)
class Vector:
    path: Path
    meta: dict
    mem_in: np.ndarray
    mem_out: np.ndarray | None
    stats: dict | None
    expect: dict | None

    @property
    def phys_base(self) -> int:
        return int(self.meta["phys_base"])

    @property
    def insn_phys(self) -> int:
        return self.phys_base + int(self.meta["insn_offset"])

    @property
    def insn_count(self) -> int:
        return int(self.meta["insn_count"])

    def insn_bytes(self) -> bytes:
        off = int(self.meta["insn_offset"])
        return self.mem_in[off:off + 16 * self.insn_count].tobytes()


def _json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VectorError(f"{path}: cannot read JSON: {e}") from e


def load_vector(path: str | Path) -> Vector:
    """Read a vector directory, checking that meta.json fits mem_in.bin."""
    path = Path(path)
    if not path.is_dir():
        raise VectorError(f"{path}: not a vector directory")
    meta = _json(path / "meta.json")
    if meta is None or not (path / "mem_in.bin").exists():
        raise VectorError(f"{path}: a vector directory needs meta.json and mem_in.bin")
    for key in ("phys_base", "insn_offset", "insn_count"):
        if not isinstance(meta.get(key), int) or meta[key] < 0:
            raise VectorError(f"{path}/meta.json: {key} must be a non-negative integer, got {meta.get(key)!r}")
    mem_in = np.fromfile(path / "mem_in.bin", dtype=np.uint8)
    if meta["insn_offset"] + 16 * meta["insn_count"] > len(mem_in):
        raise VectorError(f"{path}: the instruction stream (offset {meta['insn_offset']}, {meta['insn_count']} "
                          f"instructions) runs past the {len(mem_in)}-byte image")
    if meta["phys_base"] % 4096 or meta["phys_base"] == 0 or meta["phys_base"] + len(mem_in) > 1 << 32:
        raise VectorError(f"{path}/meta.json: phys_base 0x{meta['phys_base']:x} must be page-aligned, nonzero, "
                          "with the image below 4 GiB")
    out = path / "mem_out.bin"
    mem_out = np.fromfile(out, dtype=np.uint8) if out.exists() else None
    return Vector(path, meta, mem_in, mem_out, _json(path / "stats.json"), _json(path / "expect.json"))


@dataclass
class VectorRun:
    vector: Vector
    result: RunResult | None
    error: ProgramError | None
    mem: np.ndarray  # the image after the run (unchanged when refused)


def run_vector(vector: Vector, env: Environment | None = None, *, execute: bool = True) -> VectorRun:
    """Place the image at phys_base in a fresh device and run its stream."""
    dev = SimDevice(env or get_env())
    buf = dev.dram.alloc_at(vector.phys_base, len(vector.mem_in))
    buf.data[:] = vector.mem_in
    try:
        result = dev.run(vector.insn_phys, vector.insn_count, execute=execute)
    except ProgramError as e:
        return VectorRun(vector, None, e, buf.data)
    return VectorRun(vector, result, None, buf.data)
