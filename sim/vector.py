"""Golden-vector directories (``../shared/vectors`` format): load, run, compare, export."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.config import PAGE_BYTES, Environment, get_env
from vta.errors import ProgramError, VTAError
from vta.sim.device import RunResult, SimDevice
from vta.sim.dram import ADDRESS_LIMIT

__all__ = ["MAX_JSON_BYTES", "Vector", "VectorError", "load_vector", "run_vector"]

MAX_JSON_BYTES = 1 << 20  # meta.json, stats.json, expect.json: a few hundred bytes in practice
_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


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


def _regular_size(path: Path) -> int | None:
    """Size of a regular file, None when absent; anything else there (a directory, a device) is refused."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise VectorError(f"{path}: cannot read: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise VectorError(f"{path}: not a regular file")
    return st.st_size


def _read(path: Path, size: int) -> np.ndarray:
    """Exactly the ``size`` bytes that stat reported, as uint8 (a file that changed meanwhile is refused)."""
    data = np.empty(size, dtype=np.uint8)
    try:
        with path.open("rb") as f:
            n = f.readinto(data)
            more = f.read(1)
    except OSError as e:
        raise VectorError(f"{path}: cannot read: {e.strerror or e}") from e
    if n != size or more:
        raise VectorError(f"{path}: changed while being read ({size} bytes expected)")
    return data


def _json(path: Path) -> dict | None:
    size = _regular_size(path)
    if size is None:
        return None
    if size > MAX_JSON_BYTES:
        raise VectorError(f"{path}: {size} bytes; a vector's JSON files are at most {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(_read(path, size).tobytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise VectorError(f"{path}: not UTF-8 text (byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise VectorError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise VectorError(f"{path}: expected a JSON object, got a JSON {_JSON_NAMES.get(type(value), 'value')}")
    return value


def _meta_int(meta: dict, key: str, path: Path) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VectorError(f"{path}/meta.json: {key} must be a non-negative integer, got {value!r}")
    return value


def load_vector(path: str | Path) -> Vector:
    """Read a vector directory, checking meta.json and the file sizes before reading the images.

    Raises
    ------
    VectorError
        A missing or unreadable file, meta.json that is not a JSON object with integer ``phys_base``,
        ``insn_offset`` (a multiple of 16) and ``insn_count``, or an image that cannot fit below 4 GiB.
    """
    path = Path(path)
    if not path.is_dir():
        raise VectorError(f"{path}: not a vector directory")
    meta = _json(path / "meta.json")
    in_size = _regular_size(path / "mem_in.bin")
    if meta is None or in_size is None:
        raise VectorError(f"{path}: a vector directory needs meta.json and mem_in.bin")
    base, offset, count = (_meta_int(meta, k, path) for k in ("phys_base", "insn_offset", "insn_count"))
    if base % PAGE_BYTES or base == 0:
        raise VectorError(f"{path}/meta.json: phys_base 0x{base:x} must be page-aligned ({PAGE_BYTES} bytes) and "
                          "nonzero")
    if in_size > ADDRESS_LIMIT - PAGE_BYTES:  # too big at any phys_base: the file is at fault
        raise VectorError(f"{path}/mem_in.bin: {in_size} bytes; an image in the 32-bit address space is at most "
                          f"{ADDRESS_LIMIT - PAGE_BYTES} bytes (4 GiB less the first page)")
    if base + in_size > ADDRESS_LIMIT:
        raise VectorError(f"{path}: mem_in.bin ({in_size} bytes) placed at phys_base 0x{base:x} would end past "
                          f"4 GiB; at this phys_base an image is at most {ADDRESS_LIMIT - base} bytes")
    if offset + 16 * count > in_size:
        raise VectorError(f"{path}: the instruction stream (offset {offset}, {count} instructions) runs past the "
                          f"{in_size}-byte image")
    if offset % 16:
        raise VectorError(f"{path}/meta.json: insn_offset {offset} must be a multiple of 16 (instructions are "
                          "16-byte aligned)")
    out_size = _regular_size(path / "mem_out.bin")
    if out_size is not None and out_size != in_size:
        raise VectorError(f"{path}/mem_out.bin: {out_size} bytes; the image after the run has the size of "
                          f"mem_in.bin, {in_size} bytes")
    mem_in = _read(path / "mem_in.bin", in_size)
    mem_out = _read(path / "mem_out.bin", out_size) if out_size is not None else None
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
