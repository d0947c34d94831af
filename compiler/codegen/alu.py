"""ALU code generation: an ``alu`` loop nest becomes ALU instructions on accumulator entries.

The ALU computes ``acc[dst] = op(acc[dst], acc[src] or imm)`` (spec §3.4): the first operand is
always the destination. A stage whose first operand already lives at its own entries (the
in-place rule of the SRAM plan) is one instruction; otherwise the operand is first copied into
the destination as a GEMM reset (zeros) plus an ALU ADD, since the ISA has no move (spec §2.7).
Shifts left by a constant are SHR by a negative amount; clip is MIN then MAX (two stages).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from vta.compiler.arith import strip_cast
from vta.compiler.codegen.dma import perfect_nest
from vta.compiler.codegen.index import Form
from vta.compiler.codegen.kernels import Operand, kernel_ops
from vta.compiler.codegen.ops import KernelOp
from vta.compiler.expr import BinOp, Const, IterVar, walk
from vta.compiler.lower.ir import BufferLoad, Pragma, Store
from vta.errors import LoweringError
from vta.isa import ALU_ADD, ALU_MAX, ALU_MIN, ALU_MUL, ALU_SHR

__all__ = ["AluTemplate"]

_OPCODES = {"+": ALU_ADD, "*": ALU_MUL, "min": ALU_MIN, "max": ALU_MAX, ">>": ALU_SHR, "<<": ALU_SHR}
_COMMUTATIVE = {"+", "*", "min", "max"}
_PORTABLE_SHIFT = 15  # the Pynq bitstream uses a 5-bit signed amount (spec §3.4, §3.11)


class AluTemplate:
    """One ``alu`` pragma, analysed once and instantiated for each value of the outer loops."""

    def __init__(self, pragma: Pragma, placements: Mapping) -> None:
        loops, store = perfect_nest(pragma.body, "alu")
        if not isinstance(store, Store):
            raise LoweringError(f"alu must wrap a loop nest around one element-wise update, got {type(store).__name__}")
        self.where = where = f"alu on {store.buffer.name}"
        lanes = {v for i in store.indices[-2:] for v in walk(i) if isinstance(v, IterVar)}
        self.loops = [(v, n) for v, n in loops if v not in lanes]
        self.dst = Operand(BufferLoad(store.buffer, store.indices, "int32"), placements, where)
        value = strip_cast(store.value)
        if isinstance(value, BufferLoad):
            self.op, operands = None, [value]
        elif isinstance(value, BinOp) and value.op in _OPCODES:
            self.op, operands = value.op, [strip_cast(value.a), strip_cast(value.b)]
        else:
            raise LoweringError(f"{where}: {store.value} is not one ALU operation "
                                f"(allowed: {', '.join(_OPCODES)}, or a copy)")
        self.folds: dict = {}  # kernel folds, shared by this stage's instances
        self.operands: list[Operand | int] = []
        for x in operands:
            if isinstance(x, Const):
                self.operands.append(x.value)
            elif isinstance(x, BufferLoad):
                if tuple(x.indices[-2:]) != tuple(store.indices[-2:]):
                    raise LoweringError(f"{where}: operand {x} must be read lane by lane like the destination")
                self.operands.append(Operand(x, placements, where))
            else:
                raise LoweringError(f"{where}: operand {x} must be an accumulator element or a constant")
        if self.op == "<<" and not isinstance(self.operands[1], int):
            raise LoweringError(f"{where}: the ALU shifts left only by a constant (SHR by a negative amount)")

    def instantiate(self, env: Mapping[IterVar, int]) -> list[KernelOp]:
        dst = self.dst.form(env)
        forms = [x if isinstance(x, int) else x.form(env) for x in self.operands]
        if self.op is None:
            return [] if forms[0] == dst else self._copy(dst, forms[0], self.operands[0])
        first, other = 0, 1
        if (self.op in _COMMUTATIVE and forms[1] == dst) or isinstance(forms[0], int):
            first, other = 1, 0
        if isinstance(forms[first], int) or (self.op not in _COMMUTATIVE and first != 0):
            raise LoweringError(f"{self.where}: the first operand of {self.op} must be an accumulator element")
        ops = [] if forms[first] == dst else self._copy(dst, forms[first], self.operands[first])
        return ops + self._apply(dst, forms[other])

    def _copy(self, dst: Form, src: Form, operand: Operand) -> list[KernelOp]:
        """dst := src as reset (zeros) + ADD; refused when src overlaps the destination tile."""
        if operand.placement is self.dst.placement:
            raise LoweringError(f"{self.where}: copying {operand.name} onto itself at other entries is not "
                                "expressible on the ALU; use a separate accumulator tile")
        reset = self._kernel([dst, {None: 0}, {None: 0}], ["acc"], gemm=True, reset=True)
        add = self._kernel([dst, src], ["acc", "acc"], gemm=False, opcode=ALU_ADD)
        return reset + add

    def _apply(self, dst: Form, other: Form | int) -> list[KernelOp]:
        opcode = _OPCODES[self.op]
        if not isinstance(other, int):
            return self._kernel([dst, other], ["acc", "acc"], gemm=False, opcode=opcode)
        imm = -other if self.op == "<<" else other
        if not -(1 << 15) <= imm < (1 << 15):
            raise LoweringError(f"{self.where}: immediate {imm} does not fit the 16-bit signed ALU immediate")
        if opcode == ALU_SHR and abs(imm) > _PORTABLE_SHIFT:
            warnings.warn(f"{self.where}: shift by {imm} is outside -{_PORTABLE_SHIFT}..{_PORTABLE_SHIFT}; the Pynq "
                          "bitstream uses a 5-bit signed amount and computes something else",
                          stacklevel=2)
        return self._kernel([dst, dst], ["acc"], gemm=False, opcode=opcode, use_imm=True, imm=imm)

    def _kernel(self, forms: list[Form], scopes: list[str], *, gemm: bool, **fields: int | bool) -> list[KernelOp]:
        return kernel_ops(self.loops, forms, scopes, gemm=gemm, where=self.where, folds=self.folds, **fields)
