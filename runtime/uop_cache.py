"""Micro-op kernels, their residency in the micro-op SRAM, and the micro-op DRAM log.

A :class:`UopKernel` is what the reference runtime records per call site (spec §4.1, §4.4): at
most two affine loops and a list of micro-ops, in GEMM or ALU mode. :class:`UopRing` places
kernels in the micro-op SRAM exactly as ``UopQueue::Push`` does (ring, wrap to 0, evict what the
new range covers) and forgets everything after each synchronize. :class:`UopLog` is the DRAM
side. Our offset rule (spec §9 item 6): each LOAD UOP reads a copy of its kernel appended to the
log *when the load is issued*. Without a wrap-around inside one synchronize window this is byte
for byte the reference layout (the sum of the sizes of the kernels before it in the cache list);
with one, the reference's sync-time layout would make earlier loads read the wrong micro-ops,
while the log stays correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vta.config import Environment, get_env
from vta.errors import BackendError, RaceError, SramOutOfBoundsError, UnknownOpcodeError
from vta.isa import ALU_ADD, ALU_NAMES, OP_ALU, OP_GEMM, get_isa

__all__ = ["MODE_ALU", "MODE_GEMM", "UopKernel", "UopLog", "UopRing"]

MODE_GEMM, MODE_ALU = 0, 1
_MODE_NAMES = ("GEMM", "ALU")


def _int_tuples(rows: Sequence[Sequence[int]], width: int, what: str) -> tuple[tuple[int, ...], ...]:
    out = []
    for k, row in enumerate(rows):
        row = tuple(row)
        if len(row) != width or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in row):
            raise BackendError(f"{what}[{k}] must be {width} integers, got {row!r}")
        out.append(tuple(int(v) for v in row))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class UopKernel:
    """A recorded micro-op program: loops, micro-ops and mode; build with ``gemm`` or ``alu``.

    ``words`` holds the encoded 32-bit micro-ops; ``insn_word`` the GEMM/ALU instruction for it
    with the micro-op range and dependency flags still zero. Kernels compare by identity.
    """

    mode: int
    loops: tuple[tuple[int, ...], ...]
    uops: tuple[tuple[int, ...], ...]
    words: np.ndarray
    insn_word: int
    reset: bool = False
    opcode: int = ALU_ADD
    use_imm: bool = False
    imm: int = 0

    def __len__(self) -> int:
        return len(self.uops)

    @classmethod
    def gemm(cls, loops: Sequence[Sequence[int]], uops: Sequence[Sequence[int]], reset: bool = False,
             env: Environment | None = None) -> UopKernel:
        """A GEMM kernel.

        Parameters
        ----------
        loops : up to two ``(extent, dst_factor, src_factor, wgt_factor)``, outer first.
        uops : ``(dst, src, wgt)`` accumulator, input and weight SRAM indices.
        reset : zero the addressed accumulators instead of accumulating.

        Raises
        ------
        BackendError, EncodingError, RaceError, SramOutOfBoundsError
            Bad shapes, fields too wide, the same dst in consecutive micro-ops, too many micro-ops.

        Example
        -------
        >>> k = UopKernel.gemm(loops=[(4, 1, 0, 1)], uops=[(0, 0, 0)])
        """
        env = env or get_env()
        loops_t = _int_tuples(loops, 4, "GEMM kernel loops")
        uops_t = _int_tuples(uops, 3, "GEMM kernel uops")
        _check_shape(loops_t, uops_t, "GEMM")
        # Reference PushGEMMOp: loop[0] -> *_out, loop[1] -> *_in, a missing loop is extent 1, factors 0.
        out, inn = (list(loops_t) + [(1, 0, 0, 0)] * 2)[:2]
        values = dict(opcode=OP_GEMM, reset_reg=int(bool(reset)), iter_out=out[0], dst_factor_out=out[1],
                      src_factor_out=out[2], wgt_factor_out=out[3], iter_in=inn[0], dst_factor_in=inn[1],
                      src_factor_in=inn[2], wgt_factor_in=inn[3])
        word = get_isa(env).gemm.pack(values)
        return cls(MODE_GEMM, loops_t, uops_t, _encode(env, uops_t), word, bool(reset))

    @classmethod
    def alu(cls, loops: Sequence[Sequence[int]], uops: Sequence[Sequence[int]], opcode: int = ALU_ADD,
            use_imm: bool = False, imm: int = 0, env: Environment | None = None) -> UopKernel:
        """An ALU kernel.

        Parameters
        ----------
        loops : up to two ``(extent, dst_factor, src_factor)``, outer first.
        uops : ``(dst, src)`` accumulator indices.
        opcode : ``ALU_MIN``, ``ALU_MAX``, ``ALU_ADD``, ``ALU_SHR`` or ``ALU_MUL``.
        use_imm, imm : use the signed 16-bit immediate as the second operand.

        Raises
        ------
        BackendError, EncodingError, RaceError, SramOutOfBoundsError, UnknownOpcodeError

        Example
        -------
        >>> k = UopKernel.alu(loops=[(16, 1, 1)], uops=[(0, 0)], opcode=ALU_SHR, use_imm=True, imm=8)
        """
        env = env or get_env()
        loops_t = _int_tuples(loops, 3, "ALU kernel loops")
        uops_t = tuple((d, s, 0) for d, s in _int_tuples(uops, 2, "ALU kernel uops"))
        _check_shape(loops_t, uops_t, "ALU")
        n_ops = 5 if env.HW_VER == "0.0.2" else 4
        if isinstance(opcode, bool) or not isinstance(opcode, (int, np.integer)) or not 0 <= opcode < n_ops:
            raise UnknownOpcodeError(f"ALU kernel opcode {opcode!r} is undefined (valid: "
                                     f"{', '.join(f'{k} {v}' for k, v in ALU_NAMES.items() if k < n_ops)})",
                                     module="compute")
        # Reference PushALUOp: a single loop becomes the *inner* loop (spec §4.4).
        if len(loops_t) == 2:
            out, inn = loops_t
        else:
            out, inn = (1, 0, 0), (loops_t[0] if loops_t else (1, 0, 0))
        values = dict(opcode=OP_ALU, iter_out=out[0], dst_factor_out=out[1], src_factor_out=out[2],
                      iter_in=inn[0], dst_factor_in=inn[1], src_factor_in=inn[2], alu_opcode=int(opcode),
                      use_imm=int(bool(use_imm)), imm=imm)
        word = get_isa(env).alu.pack(values)
        return cls(MODE_ALU, loops_t, uops_t, _encode(env, uops_t), word, False, int(opcode), bool(use_imm),
                   int(imm))

    def dump(self) -> str:
        """Readable listing, as the reference prints with VTA_DEBUG_DUMP_UOP."""
        head = f"{_MODE_NAMES[self.mode]} kernel, {len(self)} uop(s)"
        if self.mode == MODE_GEMM:
            head += ", reset" if self.reset else ""
        else:
            head += f", {ALU_NAMES[self.opcode]}" + (f" imm {self.imm}" if self.use_imm else "")
        lines = [head] + [f"  loop {k}: extent {lp[0]} factors {lp[1:]}" for k, lp in enumerate(self.loops)]
        lines += [f"  uop {k}: dst {d} src {s}" + (f" wgt {w}" if self.mode == MODE_GEMM else "")
                  for k, (d, s, w) in enumerate(self.uops)]
        return "\n".join(lines)


def _check_shape(loops: tuple, uops: tuple, mode: str) -> None:
    if len(loops) > 2:
        raise BackendError(f"{mode} kernel has {len(loops)} loops; the instruction has two loop levels")
    if not uops:
        raise BackendError(f"{mode} kernel has no micro-ops; record at least one")
    for k in range(1, len(uops)):
        # HLS pipelines the micro-op loop at II=1 with no accumulator dependence (spec §3.3);
        # the reference CHECKs this per kernel (UopKernel::VerifyDep).
        for j in range(max(0, k - 2), k):
            if uops[j][0] == uops[k][0]:
                raise RaceError(f"{mode} kernel micro-ops {j} and {k} both write accumulator entry {uops[k][0]}; "
                                "micro-ops within two of each other must write different entries", module="compute")


def _encode(env: Environment, uops: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    if len(uops) > env.UOP_BUFF_DEPTH:
        raise SramOutOfBoundsError(f"a kernel of {len(uops)} micro-ops does not fit the {env.UOP_BUFF_DEPTH}-entry "
                                   "micro-op SRAM", module="compute")
    idx = np.array(uops, dtype=np.int64)
    words = get_isa(env).encode_uops(idx[:, 0], idx[:, 1], idx[:, 2])
    words.setflags(write=False)
    return words


class UopRing:
    """Which kernels sit where in the micro-op SRAM during one synchronize window (``UopQueue``)."""

    def __init__(self, depth: int):
        self.depth = depth
        self.reset()

    def reset(self) -> None:
        """Forget every placement; the reference reloads micro-ops in every run (spec §4.4)."""
        self.sram_end = 0
        self.cache_idx = 0
        self.cache: list[UopKernel] = []  # sorted by SRAM position, as the reference's ring
        self.where: dict[UopKernel, tuple[int, int]] = {}

    def place(self, kernel: UopKernel) -> tuple[int, int, bool]:
        """``(begin, end, loaded)``: the kernel's SRAM range and whether it must be loaded now."""
        hit = self.where.get(kernel)
        if hit is not None:
            return hit[0], hit[1], False
        n = len(kernel)
        if self.sram_end + n > self.depth:  # wrap to the start of the ring
            self.cache_idx, begin, self.sram_end = 0, 0, n
        else:
            begin, self.sram_end = self.sram_end, self.sram_end + n
        evict_begin = self.cache_idx
        while self.cache_idx < len(self.cache) and self.where[self.cache[self.cache_idx]][0] < self.sram_end:
            del self.where[self.cache[self.cache_idx]]
            self.cache_idx += 1
        self.cache[evict_begin:self.cache_idx] = [kernel]
        self.cache_idx = evict_begin + 1
        self.where[kernel] = (begin, self.sram_end)
        return begin, self.sram_end, True


class UopLog:
    """The micro-op DRAM buffer's contents for one window: kernels appended as they are loaded."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.reset()

    def reset(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0

    def fits(self, n: int) -> bool:
        return self.size + n <= self.capacity

    def append(self, kernel: UopKernel) -> int:
        """Append the kernel's micro-ops; returns their offset in micro-ops."""
        offset = self.size
        self.parts.append(kernel.words)
        self.size += len(kernel)
        return offset

    def data(self) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0]
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint32)
