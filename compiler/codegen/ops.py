"""The VTA operations code generation produces: one DMA or one micro-op kernel each.

An operation knows which module runs it, which SRAM entries it reads and writes (so the
dependency pass can place tokens), and how to append itself to a runtime
:class:`~vta.runtime.queue.CommandQueue`. Parameters are referred to by position, so one
generated program runs on any runtime with any buffers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vta.isa import ALU_NAMES, MEM_NAMES, MEM_OUT
from vta.runtime.uop_cache import UopKernel

if TYPE_CHECKING:
    from vta.runtime import DeviceBuffer
    from vta.runtime.queue import CommandQueue

__all__ = ["COMPUTE", "LOAD", "MODULE_NAMES", "STORE", "Footprint", "KernelOp", "LoadOp", "StoreOp", "VtaOp"]

LOAD, COMPUTE, STORE = 1, 2, 3  # the runtime's queue ids (spec §7.2 coproc_scope values)
MODULE_NAMES = {LOAD: "load", COMPUTE: "compute", STORE: "store"}


@dataclass(frozen=True)
class Footprint:
    """SRAM entries ``[lo, hi)`` of one scope ("inp", "wgt", "acc") that an operation touches."""

    scope: str
    lo: int
    hi: int


@dataclass(eq=False)
class VtaOp(ABC):
    """Base of the operations; ``pops``/``pushes`` are the queue ids the dependency pass adds."""

    module: int
    reads: tuple[Footprint, ...]
    writes: tuple[Footprint, ...]
    pops: set[int] = field(default_factory=set, kw_only=True)
    pushes: set[int] = field(default_factory=set, kw_only=True)

    def emit(self, queue: CommandQueue, buffers: Sequence[DeviceBuffer]) -> None:
        """Append this operation, its token pops before and pushes after, to ``queue``."""
        for frm in sorted(self.pops):
            queue.dep_pop(frm, self.module)
        self._emit(queue, buffers)
        for to in sorted(self.pushes):
            queue.dep_push(self.module, to)

    @abstractmethod
    def _emit(self, queue: CommandQueue, buffers: Sequence[DeviceBuffer]) -> None:
        """Append the instruction itself."""

    def _deps(self) -> str:
        pops = "".join(f" pop<{MODULE_NAMES[q]}" for q in sorted(self.pops))
        pushes = "".join(f" push>{MODULE_NAMES[q]}" for q in sorted(self.pushes))
        return pops + pushes


@dataclass(eq=False)
class LoadOp(VtaOp):
    """A 2-D LOAD from parameter ``param`` into SRAM (padding in entries, spec §3.2)."""

    param: int = 0
    elem_offset: int = 0
    x_size: int = 0
    y_size: int = 0
    x_stride: int = 0
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # y_pad_0, y_pad_1, x_pad_0, x_pad_1
    sram_index: int = 0
    memory_type: int = 0

    def _emit(self, queue: CommandQueue, buffers: Sequence[DeviceBuffer]) -> None:
        y0, y1, x0, x1 = self.pads
        queue.load_2d(buffers[self.param], self.elem_offset, self.x_size, self.y_size, self.x_stride,
                      x0, y0, x1, y1, self.sram_index, self.memory_type)

    def __str__(self) -> str:
        y0, y1, x0, x1 = self.pads
        pads = f" pad(y {y0},{y1} x {x0},{x1})" if any(self.pads) else ""
        return (f"LOAD {MEM_NAMES[self.memory_type]} sram[{self.sram_index}] <- arg{self.param}"
                f"[{self.elem_offset}] {self.y_size}x{self.x_size} stride {self.x_stride}{pads}{self._deps()}")


@dataclass(eq=False)
class StoreOp(VtaOp):
    """A 2-D STORE of output entries (the accumulators' low bytes) into parameter ``param``."""

    param: int = 0
    elem_offset: int = 0
    x_size: int = 0
    y_size: int = 0
    x_stride: int = 0
    sram_index: int = 0

    def _emit(self, queue: CommandQueue, buffers: Sequence[DeviceBuffer]) -> None:
        queue.store_2d(self.sram_index, MEM_OUT, buffers[self.param], self.elem_offset, self.x_size, self.y_size,
                       self.x_stride)

    def __str__(self) -> str:
        return (f"STORE sram[{self.sram_index}] -> arg{self.param}[{self.elem_offset}] {self.y_size}x{self.x_size} "
                f"stride {self.x_stride}{self._deps()}")


@dataclass(eq=False)
class KernelOp(VtaOp):
    """A GEMM or ALU instruction over one micro-op kernel (loops outer first, spec §3.3-3.4).

    GEMM loops are ``(extent, dst, src, wgt)`` factors and micro-ops ``(dst, src, wgt)``; ALU
    loops ``(extent, dst, src)`` and micro-ops ``(dst, src)``. Equal kernels share one cache key,
    so the runtime loads a kernel's micro-ops once while it stays resident.
    """

    gemm: bool = True
    loops: tuple[tuple[int, ...], ...] = ()
    uops: tuple[tuple[int, ...], ...] = ()
    reset: bool = False
    opcode: int = 0
    use_imm: bool = False
    imm: int = 0

    @property
    def key(self) -> tuple:
        return (self.gemm, self.loops, self.uops, self.reset, self.opcode, self.use_imm, self.imm)

    @property
    def uop_count(self) -> int:
        n = len(self.uops)
        for loop in self.loops:
            n *= loop[0]
        return n

    def _emit(self, queue: CommandQueue, buffers: Sequence[DeviceBuffer]) -> None:
        env = queue.env
        if self.gemm:
            queue.push_gemm(self.key, lambda: UopKernel.gemm(self.loops, self.uops, self.reset, env=env))
        else:
            queue.push_alu(self.key, lambda: UopKernel.alu(self.loops, self.uops, self.opcode, self.use_imm, self.imm,
                                                           env=env))

    def __str__(self) -> str:
        loops = " ".join("[" + ",".join(map(str, lp)) + "]" for lp in self.loops)
        first = ",".join(map(str, self.uops[0])) if self.uops else ""
        if self.gemm:
            what = "GEMM reset" if self.reset else "GEMM"
        else:
            operand = f" imm {self.imm}" if self.use_imm else ""
            what = f"ALU {ALU_NAMES[self.opcode]}{operand}"
        return f"{what} loops {loops or '-'} uops {len(self.uops)} (first {first}){self._deps()}"
