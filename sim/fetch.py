"""Fetch: decode the instruction stream, route it to the three modules, refuse ill-formed words.

Everything here is a property of single instructions, checked for the whole stream with
numpy before anything runs, so a program with one bad word never starts.
"""

from __future__ import annotations

import numpy as np

from vta.config import Environment
from vta.errors import BadMemoryTypeError, IllegalDepFlagError, MalformedInsnError, ProgramError, UnknownOpcodeError
from vta.isa import (
    ALU_NAMES,
    LOAD_MODULE,
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_NAMES,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    MODULES,
    OP_ALU,
    OP_GEMM,
    OP_LOAD,
    OP_STORE,
    STORE_MODULE,
    DecodedStream,
)

__all__ = ["check_fields"]


def _valid_load_types(env: Environment) -> tuple[int, ...]:
    base = (MEM_UOP, MEM_WGT, MEM_INP, MEM_ACC)
    return (*base, MEM_ACC_8BIT) if env.HW_VER == "0.0.2" else base


def _store_type(env: Environment) -> int:
    # A 2-bit memory_type field (HW_VER 0.0.1) truncates OUT (4) to 0 (spec §2.7).
    return MEM_OUT if env.HW_VER == "0.0.2" else MEM_OUT & 3


def check_fields(s: DecodedStream) -> None:
    """Raise the ProgramError of the first ill-formed instruction, if any (spec §3, vectors §4)."""
    env = s.env
    op, mem, loop, alu = s.opcode, s.mem, s.gemm, s.alu
    is_load, is_store = op == OP_LOAD, op == OP_STORE
    is_loop = (op == OP_GEMM) | (op == OP_ALU)
    active = (is_load | is_store) & (mem["x_size"] > 0)
    n_alu_ops = 5 if env.HW_VER == "0.0.2" else 4
    checks: list[tuple[type[ProgramError], np.ndarray]] = [
        (UnknownOpcodeError, (op > OP_ALU) | ((op == OP_ALU) & (alu["alu_opcode"] >= n_alu_ops))),
        (IllegalDepFlagError,
         ((s.module == LOAD_MODULE) & ((mem["pop_prev_dep"] | mem["push_prev_dep"]) > 0))
         | ((s.module == STORE_MODULE) & ((mem["pop_next_dep"] | mem["push_next_dep"]) > 0))),
        (BadMemoryTypeError,
         (active & is_load & ~np.isin(mem["memory_type"], _valid_load_types(env)))
         | (active & is_store & (mem["memory_type"] != _store_type(env)))),
        (MalformedInsnError,
         (active & is_store & ((mem["x_pad_0"] | mem["x_pad_1"] | mem["y_pad_0"] | mem["y_pad_1"]) > 0))
         | (is_loop & (loop["uop_end"] < loop["uop_bgn"]))
         | (active & (mem["y_size"] > 1) & (mem["x_stride"] < mem["x_size"]))),
    ]
    bad = np.zeros(s.count, dtype=bool)
    for _, mask in checks:
        bad |= mask
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    cls = next(c for c, mask in checks if mask[i])
    raise cls(_describe(s, i, cls), index=i, module=MODULES[int(s.module[i])])


def _describe(s: DecodedStream, i: int, cls: type[ProgramError]) -> str:
    op, m = int(s.opcode[i]), {k: int(v[i]) for k, v in s.mem.items()}
    if cls is UnknownOpcodeError:
        if op > OP_ALU:
            return f"opcode {op} is undefined (valid: 0 LOAD, 1 STORE, 2 GEMM, 3 FINISH, 4 ALU)"
        return f"ALU opcode {int(s.alu['alu_opcode'][i])} is undefined (valid: {', '.join(ALU_NAMES.values())})"
    if cls is IllegalDepFlagError:
        if int(s.module[i]) == LOAD_MODULE:
            return "LOAD INP/WGT runs on the load module, which has no previous module: pop_prev/push_prev must be 0"
        return "STORE runs on the store module, which has no next module: pop_next/push_next must be 0"
    if cls is BadMemoryTypeError:
        name = MEM_NAMES.get(m["memory_type"], "undefined")
        if op == OP_STORE:
            return f"STORE with memory_type {m['memory_type']} ({name}); only OUT can be stored"
        return f"LOAD with memory_type {m['memory_type']} ({name}); loadable: UOP, WGT, INP, ACC, ACC_8BIT"
    if op in (OP_GEMM, OP_ALU):
        return f"uop_end {int(s.gemm['uop_end'][i])} < uop_bgn {int(s.gemm['uop_bgn'][i])}"
    if op == OP_STORE and (m["x_pad_0"] | m["x_pad_1"] | m["y_pad_0"] | m["y_pad_1"]):
        pads = ", ".join(f"{k}={m[k]}" for k in ("y_pad_0", "y_pad_1", "x_pad_0", "x_pad_1"))
        return f"STORE takes no padding, got {pads}"
    return f"x_stride {m['x_stride']} < x_size {m['x_size']} with y_size {m['y_size']}: DRAM rows would overlap"
