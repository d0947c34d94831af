"""The command queue: the reference runtime's instruction builder (spec §4.2-§4.7).

Calls append instructions to one synchronize window; :meth:`CommandQueue.synchronize` drains
the token queues, appends FINISH and hands the stream to the runtime, which verifies and
launches it. The queue flushes on its own when the instruction buffer would overflow.
"""

from __future__ import annotations

import logging
import operator
import os
import sys
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TextIO

from vta.config import Environment
from vta.errors import BackendError, BadMemoryTypeError, DramOutOfBoundsError, EncodingError
from vta.isa import (
    MEM_ACC,
    MEM_ACC_8BIT,
    MEM_INP,
    MEM_NAMES,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_FINISH,
    OP_LOAD,
    OP_STORE,
    get_isa,
)
from vta.runtime.deps import COMPUTE, LOAD, NONE, STORE, InsnBuffer, qid_pair
from vta.runtime.uop_cache import MODE_ALU, MODE_GEMM, UopKernel, UopLog, UopRing

if TYPE_CHECKING:
    from vta.runtime.api import DeviceBuffer, Runtime

__all__ = ["DEBUG_DUMP_INSN", "DEBUG_DUMP_UOP", "DEBUG_FORCE_SERIAL", "CommandQueue"]

logger = logging.getLogger(__name__)

# Debug flags with the reference's values (spec §4.8).
DEBUG_DUMP_INSN, DEBUG_DUMP_UOP, DEBUG_FORCE_SERIAL = 1 << 1, 1 << 2, 1 << 5
_DEBUG_FLAGS = DEBUG_DUMP_INSN | DEBUG_DUMP_UOP | DEBUG_FORCE_SERIAL
# Room kept free after each call: 2 compute NOPs, 2 memory NOPs, 1 compute NOP and FINISH (spec §4.7).
_RESERVE = 6
_MEM_FIELDS = ("memory_type", "sram_base", "dram_base", "y_size", "x_size", "x_stride", "y_pad_0", "y_pad_1",
               "x_pad_0", "x_pad_1")


class CommandQueue:
    """One thread's instruction stream under construction (the reference ``CommandQueue``).

    Example
    -------
    >>> rt = Runtime()                                                    # doctest: +SKIP
    >>> q = rt.queue
    >>> q.load_2d(inp, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_INP)
    >>> q.dep_push(1, 2); q.dep_pop(1, 2)
    >>> q.push_gemm("site-1", lambda: UopKernel.gemm([], [(0, 0, 0)]))
    >>> q.synchronize()
    """

    def __init__(self, runtime: Runtime, env: Environment, insn_capacity: int, uop_capacity: int,
                 debug_out: TextIO | None = None):
        self._rt = runtime
        self.env = env
        isa = get_isa(env)
        # Words are assembled from the codec's field positions, looked up once here (the hot path
        # only shifts and ors): fixed parts are packed by the codec itself.
        mem, gemm = isa.mem, isa.gemm
        self._mem_layout = tuple((f.name, f.lo, f.width) for f in mem.fields if f.name in _MEM_FIELDS)
        self._opcode_word = {op: mem.pack({"opcode": op}) for op in (OP_LOAD, OP_STORE)}
        self._finish_word = gemm.pack({"opcode": OP_FINISH})
        lo = {name: bit for name, bit, _ in self._mem_layout}
        # LOAD UOP words differ only in sram_base, dram_base, x_size and x_stride (y_size is 1)
        self._uop_load = (mem.pack({"opcode": OP_LOAD, "memory_type": MEM_UOP, "y_size": 1}), lo["sram_base"],
                          lo["dram_base"], lo["x_size"], lo["x_stride"])
        gemm_lo = {f.name: f.lo for f in gemm.fields}
        self._range_lo = (gemm_lo["uop_bgn"], gemm_lo["uop_end"])
        self._elem = isa.elem_bytes
        self._loadable = (MEM_UOP, MEM_WGT, MEM_INP, MEM_ACC) + ((MEM_ACC_8BIT,) if env.HW_VER == "0.0.2" else ())
        # STORE's memory type: OUT, truncated to the field (2 bits in 0.0.1, where OUT reads as 0; spec §2.7)
        type_width = next(width for name, _, width in self._mem_layout if name == "memory_type")
        self._store_type = MEM_OUT & ((1 << type_width) - 1)
        self.insn_capacity = insn_capacity
        self.insns = InsnBuffer(env)
        self.ring = UopRing(env.UOP_BUFF_DEPTH)
        self.log = UopLog(uop_capacity)
        self.kernels: dict[tuple[int, Hashable], UopKernel] = {}
        self.debug_flags = 0
        self.debug_out = debug_out  # None: sys.stdout at the time of printing
        self._carry: list[tuple[int, int, int]] = []  # tokens an auto-flush moved into the next window
        self.continued = False  # this window continues an auto-flushed program (SRAM carries over)

    # --- debug ----------------------------------------------------------------------------
    def set_debug_mode(self, flags: int) -> None:
        """Set VTA_DEBUG_* flags: DUMP_INSN (2), DUMP_UOP (4), FORCE_SERIAL (32)."""
        self._rt.check_open("set_debug_mode")
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~_DEBUG_FLAGS or flags < 0:
            raise BackendError(f"debug flags {flags!r} are not a combination of DEBUG_DUMP_INSN (2), "
                               "DEBUG_DUMP_UOP (4) and DEBUG_FORCE_SERIAL (32)")
        self.debug_flags = flags

    # --- DMA ------------------------------------------------------------------------------
    def load_2d(self, buf: DeviceBuffer, elem_offset: int, x_size: int, y_size: int, x_stride: int,
                x_pad_before: int, y_pad_before: int, x_pad_after: int, y_pad_after: int, sram_index: int,
                memory_type: int) -> None:
        """Append a 2-D LOAD from ``buf`` into SRAM (reference ``VTALoadBuffer2D``, same argument order).

        ``elem_offset`` and ``x_stride`` count elements of ``memory_type``; pads are zero entries.

        Raises
        ------
        BackendError, BadMemoryTypeError, DramOutOfBoundsError, EncodingError
        """
        stage = COMPUTE if memory_type in (MEM_UOP, MEM_ACC, MEM_ACC_8BIT) else LOAD
        if memory_type not in self._loadable:
            raise BadMemoryTypeError(f"load_2d memory_type {memory_type!r} ({MEM_NAMES.get(memory_type, 'undefined')})"
                                     f" cannot be loaded; loadable: "
                                     f"{', '.join(MEM_NAMES[m] for m in self._loadable)}",
                                     index=len(self.insns), module="load")
        word = self._mem_word(OP_LOAD, buf, "load_2d", memory_type, elem_offset, x_size, y_size, x_stride,
                              (y_pad_before, y_pad_after, x_pad_before, x_pad_after), sram_index, stage)
        self.insns.create(stage, word, stage if x_size else NONE)
        self._check_overflow()

    def store_2d(self, sram_index: int, memory_type: int, buf: DeviceBuffer, elem_offset: int, x_size: int,
                 y_size: int, x_stride: int) -> None:
        """Append a 2-D STORE of output SRAM into ``buf`` (reference ``VTAStoreBuffer2D``).

        Raises
        ------
        BackendError, BadMemoryTypeError, DramOutOfBoundsError, EncodingError
        """
        if memory_type != MEM_OUT:
            raise BadMemoryTypeError(f"store_2d memory_type {memory_type!r} "
                                     f"({MEM_NAMES.get(memory_type, 'undefined')}); only OUT ({MEM_OUT}) is stored",
                                     index=len(self.insns), module="store")
        word = self._mem_word(OP_STORE, buf, "store_2d", memory_type, elem_offset, x_size, y_size, x_stride,
                              (0, 0, 0, 0), sram_index, STORE)
        self.insns.create(STORE, word, STORE)
        self._check_overflow()

    def _mem_word(self, opcode: int, buf: DeviceBuffer, what: str, memory_type: int, elem_offset: int, x_size: int,
                  y_size: int, x_stride: int, pads: tuple[int, int, int, int], sram_index: int, stage: int) -> int:
        phys, nbytes = self._rt._buffer_range(buf, what)
        elem = self._elem[memory_type]
        # dram_base = physical address / element bytes + offset (spec §4.3); buffers are page-aligned.
        dram_base = phys // elem + elem_offset
        if x_size > 0 and y_size > 0:
            start, end = dram_base * elem, (dram_base + (y_size - 1) * x_stride + x_size) * elem
            if start < phys or end > phys + nbytes:
                where = "DRAM" if opcode == OP_STORE else "reads DRAM"
                raise DramOutOfBoundsError(
                    f"{what} of {y_size}x{x_size} {MEM_NAMES[memory_type]} elements (stride {x_stride}) at element "
                    f"offset {elem_offset} {where} bytes 0x{start:x}..0x{end - 1:x}, outside the {nbytes}-byte buffer "
                    f"at 0x{phys:x}", index=len(self.insns), module=("load", "compute", "store")[stage - 1])
        mt = memory_type if opcode == OP_LOAD else self._store_type
        values = (mt, sram_index, dram_base, y_size, x_size, x_stride) + pads
        word = self._opcode_word[opcode]
        for (name, lo, width), v in zip(self._mem_layout, values):
            if not isinstance(v, int):
                v = _as_int(v, what, name)
            if v >> width:
                raise _field_error(what, name, v, width)
            word |= v << lo
        return word

    # --- micro-op kernels -----------------------------------------------------------------
    def push_gemm(self, key: Hashable, build: Callable[[], UopKernel]) -> None:
        """Append a GEMM over the kernel cached under ``key`` (``build()`` runs only on a miss).

        ``key`` stands for the reference's call site + signature; kernels live as long as the queue.
        """
        self._push_kernel(MODE_GEMM, key, build)

    def push_alu(self, key: Hashable, build: Callable[[], UopKernel]) -> None:
        """Append an ALU instruction over the kernel cached under ``key`` (see :meth:`push_gemm`)."""
        self._push_kernel(MODE_ALU, key, build)

    def _push_kernel(self, mode: int, key: Hashable, build: Callable[[], UopKernel]) -> None:
        if self._rt.closed:
            self._rt.check_open(("push_gemm", "push_alu")[mode])
        kernel = self.kernels.get((mode, key))
        if kernel is None:
            kernel = build()
            what = ("push_gemm", "push_alu")[mode]
            if not isinstance(kernel, UopKernel) or kernel.mode != mode:
                kind = ("a GEMM", "an ALU")[kernel.mode] + " UopKernel" if isinstance(kernel, UopKernel) else \
                    type(kernel).__name__
                raise BackendError(f"{what}({key!r}): build() returned {kind}; expected "
                                   f"{('a GEMM', 'an ALU')[mode]} UopKernel")
            self.kernels[mode, key] = kernel
            if self.debug_flags & DEBUG_DUMP_UOP:
                print(f"{what}({key!r}): {kernel.dump()}", file=self.debug_out or sys.stdout)
        if kernel not in self.ring.where and not self.log.fits(len(kernel)):
            self._auto_sync("the micro-op buffer is full")  # reference UopQueue::Push
        begin, end, load = self.ring.place(kernel)
        if load:
            offset = self.log.append(kernel) * self.env.UOP_ELEM_BYTES
            base, sram_lo, dram_lo, x_lo, stride_lo = self._uop_load
            n = end - begin
            dram = (self._rt._uop_phys + offset) // self.env.UOP_ELEM_BYTES
            self.insns.create(COMPUTE, base | begin << sram_lo | dram << dram_lo | n << x_lo | n << stride_lo, COMPUTE)
        bgn_lo, end_lo = self._range_lo
        self.insns.create(COMPUTE, kernel.insn_word | begin << bgn_lo | end << end_lo, COMPUTE)
        self._check_overflow()

    # --- dependency tokens ----------------------------------------------------------------
    def dep_push(self, from_qid: int, to_qid: int) -> None:
        """Queue ``from_qid`` sends a token to ``to_qid`` after its last instruction (1 load, 2 compute, 3 store)."""
        if self._rt.closed:
            self._rt.check_open("dep_push")
        self.insns.dep_push(*qid_pair(from_qid, to_qid, "dep_push"))

    def dep_pop(self, from_qid: int, to_qid: int) -> None:
        """Queue ``to_qid``'s next instruction waits for a token from ``from_qid``."""
        if self._rt.closed:
            self._rt.check_open("dep_pop")
        self.insns.dep_pop(*qid_pair(from_qid, to_qid, "dep_pop"))

    # --- synchronize ----------------------------------------------------------------------
    def synchronize(self, timeout_s: float = 10.0, *, export_to: str | os.PathLike[str] | None = None) -> None:
        """Drain, append FINISH, verify, run and wait; then start an empty window (spec §4.6).

        Parameters
        ----------
        timeout_s : wall-clock limit for the device run.
        export_to : also write the program as a vector directory there (``vta sim run-vector``).

        Raises
        ------
        ProgramError
            The verifier refused the stream; nothing ran and the window is dropped.
        DeviceError, DeviceTimeout
            The device failed; the window is dropped.
        """
        self._rt.check_open("synchronize")
        self._flush(timeout_s, export_to, carry=False)
        self.continued = False

    def _check_overflow(self) -> None:
        # The reference test, plus one NOP per token an auto-flush would have to carry over. An
        # instruction carries at most two pushes, so a window with room for that needs no count.
        count = len(self.insns)
        if 3 * count + _RESERVE <= self.insn_capacity:
            return
        in_flight = sum(n for n in self.insns.balance.values() if n > 0)
        if (count + _RESERVE + in_flight) * 16 > self.insn_capacity * 16:
            self._auto_sync("the instruction buffer is full")

    def _auto_sync(self, reason: str) -> None:
        """Run what is queued so far (spec §4.7); the next window continues the same program."""
        stats = self._rt.stats
        before, uops = stats.instructions, self.log.size
        self._flush(self._rt.timeout_s, None, carry=not self.debug_flags & DEBUG_FORCE_SERIAL)
        stats.auto_flushes += 1
        logger.info("automatic flush %d: %s; ran %d instructions and %d micro-ops, carrying %d token(s) into the "
                    "next run of the same program", stats.auto_flushes, reason, stats.instructions - before, uops,
                    sum(n for _, _, n in self._carry))
        self.continued = True
        for frm, to, n in self._carry:
            for _ in range(n):
                self.insns.dep_push(frm, to)
        self._carry = []

    def _flush(self, timeout_s: float, export_to: str | os.PathLike[str] | None, carry: bool) -> None:
        insns = self.insns
        if self.debug_flags & DEBUG_FORCE_SERIAL:
            insns.rewrite_serial()
        else:
            if carry:
                # Tokens still in flight would stay in the FIFOs between runs, which the verifier
                # refuses; pop them here and push them again at the start of the next window.
                self._carry = insns.outstanding()
                for frm, to, n in self._carry:
                    for _ in range(n):
                        insns.dep_pop(frm, to)
            insns.drain()
        insns.create(COMPUTE, self._finish_word, COMPUTE)  # FINISH never carries a pop (spec §4.6)
        assert not insns.pending(), insns.pending()
        try:
            self._rt._launch(insns, self.log.data(), timeout_s, self.continued, export_to)
        finally:
            self.reset()

    def reset(self) -> None:
        """Drop the queued window: instructions, pending pops, micro-op residency (kernels stay cached)."""
        self.insns.reset()
        self.ring.reset()
        self.log.reset()


def _as_int(v: object, what: str, name: str) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise EncodingError(f"{what}: {name} must be an integer, got {v!r}") from None


def _field_error(what: str, name: str, v: int, width: int) -> EncodingError:
    return EncodingError(f"{what}: {name}={v!r} does not fit its {width}-bit unsigned field "
                         f"(range 0..{(1 << width) - 1})")
