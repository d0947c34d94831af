"""Write a synchronized program as a golden-vector directory (``../shared/vectors`` format).

The runtime's buffers sit wherever the backend put them, with the 32 MiB instruction and
micro-op buffers among them, so the image is made compact: every buffer the program uses (the
used part of the instruction and micro-op buffers, the whole of each data buffer) is placed
page-aligned from ``phys_base`` 0x1000 on, and each LOAD/STORE's ``dram_base`` is moved with its
buffer. Offsets inside a buffer are kept, so the stream is otherwise bit-identical and
``vta sim run-vector DIR`` reproduces ``mem_out.bin`` and ``stats.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vta.config import PAGE_BYTES
from vta.errors import BackendError
from vta.isa import MEM_OUT, OP_LOAD, OP_STORE, MemInsn, decode_insn, get_isa

if TYPE_CHECKING:
    from vta.runtime.api import DeviceBuffer, Runtime
    from vta.runtime.backend import RunStatus

__all__ = ["PHYS_BASE", "VectorImage", "snapshot"]

PHYS_BASE = 0x1000  # the first address a fresh reference process hands out (spec §3.10)


@dataclass
class VectorImage:
    """The relocated program: regions ``(name, buffer, bytes used, image offset)`` and the image before the run."""

    regions: list[tuple[str, DeviceBuffer, int, int]]
    mem_in: np.ndarray
    insn_offset: int
    insn_count: int

    def write(self, path: str | os.PathLike[str], rt: Runtime, status: RunStatus) -> None:
        """Write mem_in.bin, meta.json, and after the run mem_out.bin (+ stats.json with counters)."""
        out = Path(path)
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.mem_in.tofile(out / "mem_in.bin")
            mem_out = self.mem_in.copy()
            for name, buf, used, offset in self.regions:
                if name != "insns":
                    mem_out[offset:offset + used] = rt.backend.copy_out(buf._handle, 0, used)
            mem_out.tofile(out / "mem_out.bin")
            meta = {
                "format": "vta-ref-vector-v1", "name": out.name, "set": "runtime", "phys_base": PHYS_BASE,
                "insn_offset": self.insn_offset, "insn_count": self.insn_count, "wait_cycles": 0,
                "regions": {name: {"offset": offset, "bytes": used} for name, _, used, offset in self.regions},
                "desc": f"program exported by the pynq-vta runtime ({rt.backend.name} backend)",
            }
            (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            if status.counters is not None:
                (out / "stats.json").write_text(json.dumps(dict(status.counters), indent=1) + "\n")
        except OSError as e:
            raise BackendError(f"cannot write vector directory {str(out)!r}: {e.strerror or e}") from e


def _owner(rt: Runtime, addr: int) -> DeviceBuffer | None:
    for buf in rt.buffers:
        if buf.phys_addr <= addr < buf.phys_addr + buf.nbytes:
            return buf
    return None


def snapshot(rt: Runtime, stream: bytes, n_uops: int) -> VectorImage:
    """Lay out the verified program compactly and copy its memory as it is before the run."""
    elem = get_isa(rt.env).elem_bytes
    insns = [decode_insn(stream[i:i + 16], rt.env) for i in range(0, len(stream), 16)]
    used: dict[int, tuple[str, DeviceBuffer, int]] = {
        rt._uop_buf.phys_addr: ("uops", rt._uop_buf, n_uops * rt.env.UOP_ELEM_BYTES)}
    moves: list[tuple[int, DeviceBuffer]] = []
    for i, insn in enumerate(insns):
        if isinstance(insn, MemInsn) and insn.opcode in (OP_LOAD, OP_STORE) and insn.x_size and insn.y_size:
            mt = MEM_OUT if insn.opcode == OP_STORE else insn.memory_type
            buf = _owner(rt, insn.dram_base * elem[mt])
            if buf is not None:
                used.setdefault(buf.phys_addr, (f"buf_{len(used)}", buf, buf.nbytes))
                moves.append((i, buf))
    layout, offset = [], 0
    for name, buf, nbytes in used.values():
        if nbytes:
            layout.append((name, buf, nbytes, offset))
            offset += -(-nbytes // PAGE_BYTES) * PAGE_BYTES
    new_base = {buf.phys_addr: PHYS_BASE + off for _, buf, _, off in layout}
    for i, buf in moves:
        insn = insns[i]
        e = elem[MEM_OUT if insn.opcode == OP_STORE else insn.memory_type]
        moved = new_base[buf.phys_addr] + insn.dram_base * e - buf.phys_addr
        insns[i] = replace(insn, dram_base=moved // e)
    relocated = b"".join(insn.encode(rt.env) for insn in insns)
    layout.append(("insns", rt._insn_buf, len(relocated), offset))
    mem_in = np.zeros(offset + -(-len(relocated) // PAGE_BYTES) * PAGE_BYTES, np.uint8)
    for _, buf, nbytes, off in layout[:-1]:
        mem_in[off:off + nbytes] = rt.backend.copy_out(buf._handle, 0, nbytes)
    mem_in[offset:offset + len(relocated)] = np.frombuffer(relocated, np.uint8)
    return VectorImage(layout, mem_in, offset, len(insns))
