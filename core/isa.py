"""Instruction and micro-op codec for VTA HW_VER 0.0.1 and 0.0.2.

Field widths come from the :class:`~vta.config.Environment`; positions follow the C bitfield
rule of ``hw_spec.h``: fields are packed LSB-first and a field that would straddle a 64-bit
word (32-bit for micro-ops) starts at the next word (spec §2.1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from vta.config import Environment, get_env
from vta.errors import ConfigError, EncodingError

__all__ = [
    "ALU_ADD",
    "ALU_MAX",
    "ALU_MIN",
    "ALU_MUL",
    "ALU_NAMES",
    "ALU_SHR",
    "COMPUTE_MODULE",
    "DEP_BITS",
    "DEP_MASK",
    "ISA",
    "LOAD_MODULE",
    "MEM_ACC",
    "MEM_ACC_8BIT",
    "MEM_INP",
    "MEM_NAMES",
    "MEM_OUT",
    "MEM_UOP",
    "MEM_WGT",
    "MODULES",
    "OPCODE_BITS",
    "OPCODE_MASK",
    "OPCODE_NAMES",
    "OP_ALU",
    "OP_FINISH",
    "OP_GEMM",
    "OP_LOAD",
    "OP_STORE",
    "POP_NEXT",
    "POP_PREV",
    "PUSH_NEXT",
    "PUSH_PREV",
    "STORE_MODULE",
    "AluInsn",
    "DecodedStream",
    "Field",
    "FinishInsn",
    "GemmInsn",
    "Insn",
    "Layout",
    "MemInsn",
    "RawInsn",
    "Uop",
    "decode_insn",
    "encode_insn",
    "encode_stream",
    "get_isa",
    "module_of",
]

OP_LOAD, OP_STORE, OP_GEMM, OP_FINISH, OP_ALU = 0, 1, 2, 3, 4
OPCODE_NAMES = {OP_LOAD: "LOAD", OP_STORE: "STORE", OP_GEMM: "GEMM", OP_FINISH: "FINISH", OP_ALU: "ALU"}
MEM_UOP, MEM_WGT, MEM_INP, MEM_ACC, MEM_OUT, MEM_ACC_8BIT = 0, 1, 2, 3, 4, 5
MEM_NAMES = {0: "UOP", 1: "WGT", 2: "INP", 3: "ACC", 4: "OUT", 5: "ACC_8BIT"}
ALU_MIN, ALU_MAX, ALU_ADD, ALU_SHR, ALU_MUL = 0, 1, 2, 3, 4
ALU_NAMES = {0: "MIN", 1: "MAX", 2: "ADD", 3: "SHR", 4: "MUL"}
LOAD_MODULE, COMPUTE_MODULE, STORE_MODULE = 0, 1, 2
MODULES = ("load", "compute", "store")
DEP_FIELDS = ("pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep")


def module_of(opcode: int, memory_type: int) -> int:
    """Module whose queue fetch puts an instruction in (spec §3.1)."""
    if opcode == OP_STORE:
        return STORE_MODULE
    if opcode == OP_LOAD and memory_type in (MEM_INP, MEM_WGT):
        return LOAD_MODULE
    return COMPUTE_MODULE


@dataclass(frozen=True)
class Field:
    name: str
    lo: int
    width: int
    signed: bool = False

    def check(self, value: int, where: str) -> int:
        """Return ``value`` as unsigned field bits, or raise EncodingError naming the field."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise EncodingError(f"{where}.{self.name}: expected an integer, got {value!r}")
        value = int(value)
        lo, hi = (-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed else (0, (1 << self.width) - 1)
        if not lo <= value <= hi:
            kind = "signed" if self.signed else "unsigned"
            raise EncodingError(
                f"{where}.{self.name}={value!r} does not fit its {self.width}-bit {kind} field (range {lo}..{hi})"
            )
        return value & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Layout:
    """Bit positions of one instruction or micro-op format."""

    name: str
    fields: tuple[Field, ...]
    word_bits: int
    total_bits: int

    @classmethod
    def build(cls, name: str, spec: list[tuple[str, int, bool]], word_bits: int, total_bits: int) -> Layout:
        pos, out = 0, []
        for fname, width, signed in spec:
            if pos // word_bits != (pos + width - 1) // word_bits:
                pos = (pos // word_bits + 1) * word_bits
            out.append(Field(fname, pos, width, signed))
            pos += width
        if pos > total_bits:
            raise ConfigError(
                f"the {name} format needs {pos} bits but has {total_bits}: the LOG_*_BUFF_SIZE keys "
                "give index fields too wide for the instruction"
            )
        return cls(name, tuple(out), word_bits, total_bits)

    def pack(self, values: dict[str, int]) -> int:
        word = 0
        for f in self.fields:
            word |= f.check(values.get(f.name, 0), self.name) << f.lo
        return word

    def unpack(self, word: int) -> dict[str, int]:
        out = {}
        for f in self.fields:
            v = (word >> f.lo) & ((1 << f.width) - 1)
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[f.name] = v
        return out

    def unpack_array(self, words: np.ndarray) -> dict[str, np.ndarray]:
        """Decode every field of ``words`` (shape (n, word_count) uint64) into int64 arrays."""
        out = {}
        for f in self.fields:
            w = words[:, f.lo // 64] if words.ndim == 2 else words
            v = ((w >> np.uint64(f.lo % 64)) & np.uint64((1 << f.width) - 1)).astype(np.int64)
            if f.signed:
                v = np.where(v >> (f.width - 1), v - (1 << f.width), v)
            out[f.name] = v
        return out


# The opcode and the four dependency flags open every instruction format (spec §2.1); their
# masks come from the same field list the formats are built from.
OPCODE_BITS = 3
_HEADER_SPEC = [("opcode", OPCODE_BITS, False), *((d, 1, False) for d in DEP_FIELDS)]
_HEADER = Layout.build("header", _HEADER_SPEC, 64, 64)
OPCODE_MASK = (1 << OPCODE_BITS) - 1
POP_PREV, POP_NEXT, PUSH_PREV, PUSH_NEXT = (1 << f.lo for f in _HEADER.fields[1:])
DEP_MASK = POP_PREV | POP_NEXT | PUSH_PREV | PUSH_NEXT
DEP_BITS = dict(zip(DEP_FIELDS, (POP_PREV, POP_NEXT, PUSH_PREV, PUSH_NEXT)))


class ISA:
    """The four formats of one configuration (use :func:`get_isa`, which caches)."""

    def __init__(self, env: Environment):
        self.env = env
        deps = list(_HEADER_SPEC)
        self.mem = Layout.build("LOAD/STORE", deps + [
            ("memory_type", env.MEMOP_ID_BITS, False), ("sram_base", 16, False),
            ("dram_base", 32, False), ("y_size", 16, False), ("x_size", 16, False),
            ("x_stride", 16, False), ("y_pad_0", 4, False), ("y_pad_1", 4, False),
            ("x_pad_0", 4, False), ("x_pad_1", 4, False),
        ], 64, 128)
        loop = [
            ("reset_reg", 1, False), ("uop_bgn", env.LOG_UOP_BUFF_DEPTH, False),
            ("uop_end", env.LOG_UOP_BUFF_DEPTH + 1, False), ("iter_out", 14, False), ("iter_in", 14, False),
            ("dst_factor_out", env.LOG_ACC_BUFF_DEPTH, False), ("dst_factor_in", env.LOG_ACC_BUFF_DEPTH, False),
        ]
        self.gemm = Layout.build("GEMM", deps + loop + [
            ("src_factor_out", env.LOG_INP_BUFF_DEPTH, False), ("src_factor_in", env.LOG_INP_BUFF_DEPTH, False),
            ("wgt_factor_out", env.LOG_WGT_BUFF_DEPTH, False), ("wgt_factor_in", env.LOG_WGT_BUFF_DEPTH, False),
        ], 64, 128)
        self.alu = Layout.build("ALU", deps + loop + [
            ("src_factor_out", env.ALU_SRC_FACTOR_BITS, False), ("src_factor_in", env.ALU_SRC_FACTOR_BITS, False),
            ("alu_opcode", env.ALU_OPCODE_BITS, False), ("use_imm", 1, False), ("imm", 16, True),
        ], 64, 128)
        # DRAM bytes per element of each memory type (dram_base and x_stride count these units, spec §2.4);
        # ACC_8BIT holds one int8 per accumulator lane.
        self.elem_bytes: dict[int, int] = {
            MEM_UOP: env.UOP_ELEM_BYTES, MEM_WGT: env.WGT_ELEM_BYTES, MEM_INP: env.INP_ELEM_BYTES,
            MEM_ACC: env.ACC_ELEM_BYTES, MEM_OUT: env.OUT_ELEM_BYTES, MEM_ACC_8BIT: env.ACC_ELEM_BYTES // 4,
        }
        self.uop = Layout.build("UOP", [
            ("dst_idx", env.UOP_DST_BITS, False), ("src_idx", env.UOP_SRC_BITS, False),
            ("wgt_idx", env.UOP_WGT_BITS, False),
        ], 32, 32)

    def layout_for(self, opcode: int) -> Layout:
        if opcode in (OP_LOAD, OP_STORE):
            return self.mem
        if opcode == OP_ALU:
            return self.alu
        return self.gemm  # GEMM, FINISH and unknown opcodes share the GEMM layout

    # --- micro-ops ----------------------------------------------------------------------
    def encode_uops(self, dst: np.ndarray, src: np.ndarray, wgt: np.ndarray) -> np.ndarray:
        """Pack index arrays into uint32 micro-ops; any index too wide raises EncodingError."""
        arrays = [np.asarray(a, dtype=np.int64) for a in (dst, src, wgt)]
        word = np.zeros(np.broadcast(*arrays).shape, dtype=np.uint32)
        for f, a in zip(self.uop.fields, arrays):
            bad = (a < 0) | (a >= (1 << f.width))
            if bad.any():
                i = int(np.flatnonzero(bad.ravel())[0])
                raise EncodingError(
                    f"UOP[{i}].{f.name}={int(a.ravel()[i])} does not fit its {f.width}-bit unsigned field "
                    f"(range 0..{(1 << f.width) - 1})"
                )
            word |= (a.astype(np.uint32) << np.uint32(f.lo)).astype(np.uint32)
        return word

    def decode_uops(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split uint32 micro-ops into (dst, src, wgt) int64 index arrays."""
        w = np.asarray(words, dtype=np.uint32).astype(np.uint64)
        d = self.uop.unpack_array(w)
        return d["dst_idx"], d["src_idx"], d["wgt_idx"]


@functools.lru_cache(maxsize=16)
def get_isa(env: Environment | None = None) -> ISA:
    return ISA(env or get_env())


# --- instruction records -------------------------------------------------------------------

@dataclass(frozen=True)
class _InsnBase:
    pop_prev_dep: int = 0
    pop_next_dep: int = 0
    push_prev_dep: int = 0
    push_next_dep: int = 0
    KIND: ClassVar[str] = ""

    def values(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def encode(self, env: Environment | None = None) -> bytes:
        """16 little-endian bytes (word0 = bits 0..63)."""
        isa = get_isa(env or get_env())
        values = self.values()
        return isa.layout_for(values["opcode"]).pack(values).to_bytes(16, "little")

    def flags_text(self) -> str:
        names = ("pop_prev", "pop_next", "push_prev", "push_next")
        return " ".join(n for n, d in zip(names, DEP_FIELDS) if getattr(self, d)) or "-"


@dataclass(frozen=True)
class MemInsn(_InsnBase):
    """LOAD (opcode 0) or STORE (opcode 1): a 2-D strided DMA with padding (spec §2.4)."""

    opcode: int = OP_LOAD
    memory_type: int = MEM_INP
    sram_base: int = 0
    dram_base: int = 0
    y_size: int = 0
    x_size: int = 0
    x_stride: int = 0
    y_pad_0: int = 0
    y_pad_1: int = 0
    x_pad_0: int = 0
    x_pad_1: int = 0


@dataclass(frozen=True)
class _LoopInsn(_InsnBase):
    reset_reg: int = 0
    uop_bgn: int = 0
    uop_end: int = 0
    iter_out: int = 1
    iter_in: int = 1
    dst_factor_out: int = 0
    dst_factor_in: int = 0
    src_factor_out: int = 0
    src_factor_in: int = 0


@dataclass(frozen=True)
class GemmInsn(_LoopInsn):
    """GEMM (opcode 2): a two-level loop over a micro-op range (spec §2.5)."""

    opcode: int = OP_GEMM
    wgt_factor_out: int = 0
    wgt_factor_in: int = 0


@dataclass(frozen=True)
class FinishInsn(GemmInsn):
    """FINISH (opcode 3): GEMM format, only the opcode and dependency flags matter."""

    opcode: int = OP_FINISH
    iter_out: int = 0
    iter_in: int = 0


@dataclass(frozen=True)
class AluInsn(_LoopInsn):
    """ALU (opcode 4): element-wise op on accumulator entries (spec §2.6)."""

    opcode: int = OP_ALU
    alu_opcode: int = ALU_ADD
    use_imm: int = 0
    imm: int = 0


@dataclass(frozen=True)
class RawInsn(_InsnBase):
    """An instruction with an undefined opcode (5..7), kept with its raw bits."""

    opcode: int = 5
    bits: int = 0  # all 128 bits; the opcode and flag fields above take precedence over bits 0..6

    def encode(self, env: Environment | None = None) -> bytes:
        low = self.opcode | sum(DEP_BITS[d] for d in DEP_FIELDS if getattr(self, d))
        return ((self.bits & ~(OPCODE_MASK | DEP_MASK)) | low).to_bytes(16, "little")


Insn = MemInsn | GemmInsn | FinishInsn | AluInsn | RawInsn


@dataclass(frozen=True)
class Uop:
    dst_idx: int = 0
    src_idx: int = 0
    wgt_idx: int = 0

    def encode(self, env: Environment | None = None) -> int:
        return get_isa(env or get_env()).uop.pack(self.__dict__)

    @classmethod
    def decode(cls, word: int, env: Environment | None = None) -> Uop:
        return cls(**get_isa(env or get_env()).uop.unpack(int(word)))


def encode_insn(insn: Insn, env: Environment | None = None) -> bytes:
    return insn.encode(env)


def decode_insn(data: bytes, env: Environment | None = None) -> Insn:
    """Decode one 16-byte instruction into its record type."""
    if len(data) != 16:
        raise EncodingError(f"an instruction is 16 bytes, got {len(data)}")
    isa = get_isa(env or get_env())
    bits = int.from_bytes(data, "little")
    opcode = bits & OPCODE_MASK
    if opcode > OP_ALU:
        flags = {d: int(bool(bits & DEP_BITS[d])) for d in DEP_FIELDS}
        return RawInsn(opcode=opcode, bits=bits, **flags)
    values = isa.layout_for(opcode).unpack(bits)
    cls = {OP_LOAD: MemInsn, OP_STORE: MemInsn, OP_GEMM: GemmInsn, OP_FINISH: FinishInsn, OP_ALU: AluInsn}[opcode]
    return cls(**values)


def encode_stream(insns: list[Insn], env: Environment | None = None) -> bytes:
    return b"".join(i.encode(env) for i in insns)


class DecodedStream:
    """A whole instruction stream decoded with numpy: one int64 array per field and format.

    ``mem``, ``gemm`` and ``alu`` hold every field of that format computed for *all*
    instructions; use ``opcode`` to pick the meaningful one. ``module`` routes each
    instruction as fetch does.
    """

    def __init__(self, data: bytes | np.ndarray, env: Environment | None = None):
        raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
        if raw.size % 16:
            raise EncodingError(f"an instruction stream is a multiple of 16 bytes, got {raw.size}")
        self.env = env or get_env()
        isa = get_isa(self.env)
        self.words = np.ascontiguousarray(raw).view("<u8").reshape(-1, 2)
        self.count = len(self.words)
        self.mem = isa.mem.unpack_array(self.words)
        self.gemm = isa.gemm.unpack_array(self.words)
        self.alu = isa.alu.unpack_array(self.words)
        self.opcode = self.mem["opcode"]
        is_store = self.opcode == OP_STORE
        is_load_mod = (self.opcode == OP_LOAD) & np.isin(self.mem["memory_type"], (MEM_INP, MEM_WGT))
        self.module = np.where(is_store, STORE_MODULE, np.where(is_load_mod, LOAD_MODULE, COMPUTE_MODULE))

    def __len__(self) -> int:
        return self.count

    def insn(self, i: int) -> Insn:
        return decode_insn(self.words[i].tobytes(), self.env)
