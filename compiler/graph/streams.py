"""Instruction streams built and verified once, then replayed without the Python that built them.

Capturing runs the program through the runtime as usual: the command queue builds the stream,
the runtime's verifier checks it against the live buffers, the device runs it. The bytes the
device was given (and the micro-ops they load) are copied into buffers of their own, with the
LOAD UOP addresses moved to the private micro-op copy. A replay is one ``backend.run`` per
captured run: the same verified bytes over the same buffers, whatever the data in them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from vta.compiler.program import Program
from vta.isa import MEM_UOP, OP_LOAD, DecodedStream, MemInsn, decode_insn, encode_insn
from vta.runtime import DeviceBuffer, Runtime

__all__ = ["Stream", "capture", "replay"]


@dataclass
class Stream:
    """One verified device run: its instruction and micro-op buffers and its modeled time (sim only)."""

    insns: DeviceBuffer
    count: int
    uops: DeviceBuffer | None

    def buffers(self) -> list[DeviceBuffer]:
        return [self.insns] + ([self.uops] if self.uops is not None else [])


def _owner(rt: Runtime, addr: int) -> DeviceBuffer:
    for buf in rt.buffers:
        if buf.phys_addr <= addr < buf.phys_addr + buf.nbytes:
            return buf
    raise AssertionError(f"address 0x{addr:x} is in no buffer of the runtime")


def _relocate(rt: Runtime, raw: bytes, owned: list[DeviceBuffer]) -> Stream:
    """Copy one run's stream and micro-ops to new buffers; LOAD UOP now reads the private copy."""
    env = rt.env
    elem = env.UOP_ELEM_BYTES
    s = DecodedStream(raw, env)
    loads = np.flatnonzero((s.opcode == OP_LOAD) & (s.mem["memory_type"] == MEM_UOP))
    uops = None
    words = bytearray(raw)
    if len(loads):
        src = _owner(rt, int(s.mem["dram_base"][loads[0]]) * elem)
        lo = src.phys_addr // elem
        end = int(max(s.mem["dram_base"][i] + s.mem["x_size"][i] for i in loads)) - lo
        uops = rt.alloc(end * elem)
        owned.append(uops)
        uops.copy_from(src.view(np.uint8)[:end * elem])
        for i in loads:
            insn = decode_insn(raw[16 * i:16 * i + 16], env)
            assert isinstance(insn, MemInsn)
            moved = replace(insn, dram_base=insn.dram_base - lo + uops.phys_addr // elem)
            words[16 * i:16 * i + 16] = encode_insn(moved, env)
    insns = rt.alloc(len(words))
    owned.append(insns)
    insns.copy_from(bytes(words))
    return Stream(insns, s.count, uops)


def capture(rt: Runtime, prog: Program, args: Sequence[DeviceBuffer], owned: list[DeviceBuffer]
            ) -> tuple[list[Stream], float | None, float]:
    """Run ``prog`` once on ``args`` (verified by the runtime) and keep its runs as :class:`Stream` s.

    New buffers are appended to ``owned`` as they are made, so a failure leaves them to the caller
    to free. Returns the streams, the modeled seconds (None without a timing model) and the wall
    time spent inside the backend's runs.
    """
    raws: list[bytes] = []
    run = rt.backend.run
    inside = [0.0]

    def keep(insn_phys: int, insn_count: int, timeout_s: float):
        buf = _owner(rt, insn_phys)
        off = insn_phys - buf.phys_addr
        raws.append(buf.view(np.uint8)[off:off + 16 * insn_count].tobytes())
        start = time.perf_counter()
        try:
            return run(insn_phys, insn_count, timeout_s)
        finally:
            inside[0] += time.perf_counter() - start

    backend = rt.backend
    own = vars(backend).get("run")  # an instance-level wrapper someone else installed stays in place
    backend.run = keep  # the runtime verifies, then calls this: we keep exactly what was verified
    try:
        prog.run(*args, runtime=rt)
    finally:
        if own is None:
            del backend.run
        else:
            backend.run = own
    modeled = rt.last_timing().seconds if "timing" in rt.backend.capabilities else None
    return [_relocate(rt, raw, owned) for raw in raws], modeled, inside[0]


def replay(rt: Runtime, streams: Sequence[Stream], timeout_s: float) -> float:
    """Run the captured streams in order; returns the wall time spent inside the backend."""
    total = 0.0
    for st in streams:
        start = time.perf_counter()
        rt.backend.run(st.insns.phys_addr, st.count, timeout_s)
        total += time.perf_counter() - start
    return total
