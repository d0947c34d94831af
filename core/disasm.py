"""Readable listings of instruction streams: one line per instruction with module and flags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vta.config import Environment, get_env
from vta.errors import EncodingError, VTAError
from vta.isa import (
    ALU_NAMES,
    MEM_NAMES,
    MODULES,
    OP_ALU,
    OP_FINISH,
    OP_GEMM,
    OP_LOAD,
    AluInsn,
    DecodedStream,
    GemmInsn,
    Insn,
    MemInsn,
    get_isa,
)

__all__ = ["disassemble", "disassemble_path", "format_insn"]


def format_insn(insn: Insn) -> str:
    """One instruction as text: mnemonic, fields that matter, dependency flags."""
    flags = f"[{insn.flags_text()}]"
    if isinstance(insn, MemInsn):
        name = "LOAD" if insn.opcode == OP_LOAD else "STORE"
        mem = MEM_NAMES.get(insn.memory_type, f"type{insn.memory_type}")
        if insn.x_size == 0:
            return f"{name:6s} {mem:8s} NOP {flags}"
        pads = f" pad(y {insn.y_pad_0},{insn.y_pad_1} x {insn.x_pad_0},{insn.x_pad_1})" if (
            insn.y_pad_0 | insn.y_pad_1 | insn.x_pad_0 | insn.x_pad_1) else ""
        return (f"{name:6s} {mem:8s} sram {insn.sram_base} dram 0x{insn.dram_base:x} y {insn.y_size} x {insn.x_size} "
                f"stride {insn.x_stride}{pads} {flags}")
    if isinstance(insn, AluInsn):
        op = ALU_NAMES.get(insn.alu_opcode, f"op{insn.alu_opcode}")
        operand = f"imm {insn.imm}" if insn.use_imm else "acc"
        return (f"ALU    {op:8s} uop [{insn.uop_bgn},{insn.uop_end}) out {insn.iter_out}x(dst {insn.dst_factor_out}, "
                f"src {insn.src_factor_out}) in {insn.iter_in}x(dst {insn.dst_factor_in}, src {insn.src_factor_in}) "
                f"{operand} {flags}")
    if isinstance(insn, GemmInsn) and insn.opcode == OP_FINISH:
        return f"FINISH {flags}"
    if isinstance(insn, GemmInsn):
        kind = "RESET" if insn.reset_reg else "MAC"
        return (f"GEMM   {kind:8s} uop [{insn.uop_bgn},{insn.uop_end}) out {insn.iter_out}x(acc {insn.dst_factor_out}, "
                f"inp {insn.src_factor_out}, wgt {insn.wgt_factor_out}) in {insn.iter_in}x(acc {insn.dst_factor_in}, "
                f"inp {insn.src_factor_in}, wgt {insn.wgt_factor_in}) {flags}")
    return f"OP{insn.opcode}    undefined opcode {flags}"


def disassemble(data: bytes, env: Environment | None = None, uops: np.ndarray | None = None,
                uop_base: int = 0) -> Iterator[str]:
    """Yield one line per instruction; with ``uops`` (uint32 words starting at SRAM index ``uop_base``)
    also list the micro-ops each GEMM/ALU reads."""
    env = env or get_env()
    s = DecodedStream(data, env)
    isa = get_isa(env)
    for i in range(len(s)):
        insn = s.insn(i)
        yield f"{i:6d}  {MODULES[int(s.module[i])]:7s}  {format_insn(insn)}"
        if uops is not None and insn.opcode in (OP_GEMM, OP_ALU):
            lo, hi = insn.uop_bgn - uop_base, insn.uop_end - uop_base
            if 0 <= lo <= hi <= len(uops):
                dst, src, wgt = isa.decode_uops(uops[lo:hi])
                for u, (d, sr, w) in enumerate(zip(dst, src, wgt)):
                    yield f"{'':17s}uop {insn.uop_bgn + u}: dst {d} src {sr} wgt {w}"


def disassemble_path(path: str | Path, uops: bool = False, env: Environment | None = None) -> Iterator[str]:
    """List a raw instruction file or the stream of a vector directory (with its uop region when asked)."""
    path = Path(path)
    if path.is_dir():
        from vta.sim.vector import load_vector

        v = load_vector(path)
        words = None
        if uops:
            region = v.meta.get("regions", {}).get("uops") or v.meta.get("regions", {}).get("uop_pool")
            if region:
                words = v.mem_in[region["offset"]:region["offset"] + region["bytes"]].view("<u4")
        yield from disassemble(v.insn_bytes(), env, words)
        return
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VTAError(f"cannot read instruction file {str(path)!r}: {e.strerror}") from e
    if len(data) % 16:
        raise EncodingError(f"{path}: {len(data)} bytes is not a whole number of 16-byte instructions")
    yield from disassemble(data, env)
