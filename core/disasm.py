"""Readable listings of instruction streams: one line per instruction with module and flags.

A raw file is only listed when it looks like an instruction stream: every opcode defined
(LOAD, STORE, GEMM, FINISH, ALU) and FINISH last, so a data file is not decoded into
thousands of meaningless instructions. Files are read with a bound (:data:`MAX_STREAM_BYTES`).
The micro-ops of a vector directory's GEMM/ALU instructions are found by replaying the
stream's LOAD UOPs over the vector's memory image, the way the compute module fills its
micro-op SRAM. numpy and the codec are imported inside the functions, so ``vta --help``
does not pay for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vta.errors import EncodingError, VTAError

if TYPE_CHECKING:
    import numpy as np

    from vta.config import Environment
    from vta.isa import DecodedStream, Insn

__all__ = ["MAX_STREAM_BYTES", "disassemble", "disassemble_path", "format_insn", "read_stream_file",
           "stream_problems"]

MAX_STREAM_BYTES = 16 << 20  # 1 Mi instructions: far beyond any program the 512-deep queues make sense of


def format_insn(insn: Insn) -> str:
    """One instruction as text: mnemonic, fields that matter, dependency flags."""
    from vta.isa import ALU_NAMES, MEM_NAMES, OP_FINISH, OP_LOAD, AluInsn, GemmInsn, MemInsn

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


class _UopSram:
    """The micro-op SRAM as the stream's LOAD UOPs fill it from a memory image placed at ``phys_base``."""

    def __init__(self, image: np.ndarray, phys_base: int, env: Environment):
        import numpy as np

        self.image, self.phys_base, self.env = image, phys_base, env
        self.words = np.zeros(env.UOP_BUFF_DEPTH, dtype=np.uint32)
        self.loaded = np.zeros(env.UOP_BUFF_DEPTH, dtype=bool)
        self.bad_loads: list[tuple[int, int, int]] = []  # (instruction, SRAM lo, hi) of LOAD UOPs not replayable

    def load(self, i: int, s: DecodedStream) -> None:
        """Replay LOAD UOP ``i``: a (y, x) block of words with zero padding around the rows read from DRAM."""
        e = self.env.UOP_ELEM_BYTES
        m = {k: int(s.mem[k][i]) for k in ("sram_base", "dram_base", "y_size", "x_size", "x_stride", "y_pad_0",
                                           "y_pad_1", "x_pad_0", "x_pad_1")}
        if m["x_size"] == 0:
            return  # a NOP: only carries dependency flags
        x_total = m["x_pad_0"] + m["x_size"] + m["x_pad_1"]
        end = m["sram_base"] + (m["y_pad_0"] + m["y_size"] + m["y_pad_1"]) * x_total
        first = m["dram_base"] * e - self.phys_base
        last = (m["dram_base"] + (m["y_size"] - 1) * m["x_stride"] + m["x_size"]) * e - self.phys_base
        if end > len(self.words) or (m["y_size"] and (first < 0 or last > len(self.image))):
            self.bad_loads.append((i, m["sram_base"], end))
            return
        self.words[m["sram_base"]:end] = 0
        self.loaded[m["sram_base"]:end] = True
        for row in range(m["y_size"]):
            lo = (m["dram_base"] + row * m["x_stride"]) * e - self.phys_base
            dst = m["sram_base"] + (m["y_pad_0"] + row) * x_total + m["x_pad_0"]
            self.words[dst:dst + m["x_size"]] = self.image[lo:lo + m["x_size"] * e].view("<u4")

    def lines(self, lo: int, hi: int) -> list[str]:
        """The micro-ops at SRAM entries [lo, hi), or one line saying why they cannot be listed."""
        from vta.isa import get_isa

        pad = " " * 17
        if hi <= lo:
            return [f"{pad}(no micro-ops: the range [{lo},{hi}) is empty)"]
        if hi > len(self.words):
            return [f"{pad}(micro-ops [{lo},{hi}) not listed: the uop SRAM has {len(self.words)} entries)"]
        if not self.loaded[lo:hi].all():
            bad = [i for i, a, b in self.bad_loads if a < hi and lo < b]
            why = (f"instruction {bad[-1]} (LOAD UOP) reads outside the vector's memory image or the uop SRAM"
                   if bad else "no earlier LOAD UOP in this stream filled them")
            return [f"{pad}(micro-ops [{lo},{hi}) not listed: {why})"]
        dst, src, wgt = get_isa(self.env).decode_uops(self.words[lo:hi])
        return [f"{pad}uop {lo + u}: dst {d} src {sr} wgt {w}" for u, (d, sr, w) in enumerate(zip(dst, src, wgt))]


def stream_problems(s: DecodedStream) -> list[str]:
    """Why a decoded stream does not look like a VTA program (empty when it does)."""
    import numpy as np

    from vta.isa import OP_FINISH, OPCODE_NAMES

    if len(s) == 0:
        return ["it holds no instructions"]
    problems = []
    undefined = np.flatnonzero(~np.isin(s.opcode, list(OPCODE_NAMES)))
    if len(undefined):
        problems.append(f"{len(undefined)} of {len(s)} instructions have an undefined opcode (first: instruction "
                        f"{undefined[0]}, opcode {int(s.opcode[undefined[0]])}; defined: "
                        f"{', '.join(f'{k} {v}' for k, v in OPCODE_NAMES.items())})")
    if int(s.opcode[-1]) != OP_FINISH:
        problems.append(f"the last instruction ({len(s) - 1}) is not FINISH")
    return problems


def disassemble(data: bytes, env: Environment | None = None, uops: _UopSram | None = None) -> Iterator[str]:
    """Yield one line per instruction; with ``uops`` also the micro-ops each GEMM/ALU reads."""
    from vta.config import get_env
    from vta.isa import MEM_UOP, MODULES, OP_ALU, OP_GEMM, OP_LOAD, DecodedStream

    env = env or get_env()
    s = DecodedStream(data, env)
    for i in range(len(s)):
        insn = s.insn(i)
        yield f"{i:6d}  {MODULES[int(s.module[i])]:7s}  {format_insn(insn)}"
        if uops is None:
            continue
        if insn.opcode == OP_LOAD and insn.memory_type == MEM_UOP:
            uops.load(i, s)
        elif insn.opcode in (OP_GEMM, OP_ALU):
            yield from uops.lines(insn.uop_bgn, insn.uop_end)


def read_stream_file(path: str | Path) -> bytes:
    """A raw instruction file's bytes, refusing folders and files over :data:`MAX_STREAM_BYTES` before reading them."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_STREAM_BYTES + 1)  # bounded even for /dev/zero or a pipe, whose size is unknown
    except IsADirectoryError:
        raise VTAError(f"{path}: a folder that is not a vector directory (it needs meta.json and mem_in.bin)") from None
    except OSError as e:
        raise VTAError(f"cannot read instruction file {str(path)!r}: {e.strerror}") from e
    if len(data) > MAX_STREAM_BYTES:
        raise EncodingError(f"{path}: more than {MAX_STREAM_BYTES} bytes ({MAX_STREAM_BYTES >> 20} MiB, "
                            f"{MAX_STREAM_BYTES // 16} instructions), the limit for an instruction file")
    if len(data) % 16:
        raise EncodingError(f"{path}: {len(data)} bytes is not a whole number of 16-byte instructions")
    return data


def disassemble_path(path: str | Path, uops: bool = False, env: Environment | None = None,
                     force: bool = False) -> Iterator[str]:
    """List a raw instruction file or the stream of a vector directory (with its micro-ops when asked).

    A raw file that does not look like an instruction stream (see :func:`stream_problems`) raises
    EncodingError unless ``force``; ``uops`` needs a vector directory, whose image holds the micro-ops.
    """
    from vta.config import get_env
    from vta.isa import DecodedStream

    env = env or get_env()
    path = Path(path)
    if path.is_dir() and ((path / "meta.json").exists() or (path / "mem_in.bin").exists()):
        from vta.sim.vector import load_vector

        v = load_vector(path)
        sram = _UopSram(v.mem_in, v.phys_base, env) if uops else None
        yield from disassemble(v.insn_bytes(), env, sram)
        return
    if uops:
        raise VTAError(f"{path}: --uops needs a vector directory: a raw instruction file has no memory image to "
                       "read the micro-ops from")
    data = read_stream_file(path)
    problems = stream_problems(DecodedStream(data, env))
    if problems and not force:
        raise EncodingError(f"{path} does not look like an instruction stream: {'; '.join(problems)} "
                            "(--force lists it anyway)")
    yield from disassemble(data, env)
