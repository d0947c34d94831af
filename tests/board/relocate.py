"""Golden vectors on a real board: their streams name fixed physical addresses, so move them into a pynq buffer."""

from __future__ import annotations

import dataclasses

import numpy as np

from vta.config import PAGE_BYTES, Environment
from vta.isa import MEM_ACC, MEM_ACC_8BIT, MEM_INP, MEM_OUT, MEM_UOP, MEM_WGT, OP_LOAD, OP_STORE, MemInsn, decode_insn
from vta.sim.vector import Vector


def relocated_image(vector: Vector, new_base: int, env: Environment) -> np.ndarray:
    """The vector's input image with every LOAD/STORE DRAM address inside it moved by ``new_base - phys_base``."""
    delta = new_base - vector.phys_base
    assert delta % PAGE_BYTES == 0, "moves are whole pages, so every element size divides them"
    elem = {MEM_UOP: env.UOP_ELEM_BYTES, MEM_INP: env.INP_ELEM_BYTES, MEM_WGT: env.WGT_ELEM_BYTES,
            MEM_ACC: env.ACC_ELEM_BYTES, MEM_OUT: env.OUT_ELEM_BYTES, MEM_ACC_8BIT: env.ACC_ELEM_BYTES // 4}
    image = vector.mem_in.copy()
    off = int(vector.meta["insn_offset"])
    for i in range(vector.insn_count):
        at = off + 16 * i
        insn = decode_insn(image[at:at + 16].tobytes(), env)
        if isinstance(insn, MemInsn) and insn.opcode in (OP_LOAD, OP_STORE):
            e = elem[MEM_OUT if insn.opcode == OP_STORE else insn.memory_type]
            if vector.phys_base <= insn.dram_base * e < vector.phys_base + len(image):  # else moves no data
                moved = dataclasses.replace(insn, dram_base=insn.dram_base + delta // e)
                image[at:at + 16] = np.frombuffer(moved.encode(env), np.uint8)
    return image


def insn_region(vector: Vector) -> slice:
    """The image bytes holding the instruction stream (the only bytes relocation changes)."""
    off = int(vector.meta["insn_offset"])
    return slice(off, off + 16 * vector.insn_count)
