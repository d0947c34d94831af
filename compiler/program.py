"""A compiled VTA program: the operations code generation produced, runnable on any runtime.

Parameters are bound at run time, so one program runs on the simulator, the board or a remote
board and on any buffers. ``run`` copies numpy inputs in, replays the operations on the
runtime's command queue (which adds micro-op loads, NOPs and FINISH as the reference runtime
does, spec §4), synchronizes (the verifier checks the stream first) and copies outputs back.
"""

from __future__ import annotations

import functools
import io
import os
import time
from dataclasses import dataclass

import numpy as np

from vta.compiler.codegen.ops import KernelOp, LoadOp, StoreOp, VtaOp
from vta.compiler.lower.ir import Buffer, LoweredFunc
from vta.config import Environment
from vta.errors import BackendError
from vta.runtime import DeviceBuffer, Runtime, get_runtime
from vta.runtime.queue import DEBUG_DUMP_INSN

__all__ = ["Program", "RunInfo"]


@dataclass(frozen=True)
class RunInfo:
    """What one run cost the host: instructions the runtime sent, device runs, wall time."""

    instructions: int
    runs: int
    wall_s: float


@dataclass(frozen=True, eq=False)
class Program:
    """A lowered function and its VTA operations in program order, with dependency tokens.

    Example
    -------
    >>> prog = build(schedule, [data, kernel, out])          # doctest: +SKIP
    >>> prog.run(a, w, result)                               # fills ``result`` in place
    """

    name: str
    func: LoweredFunc
    ops: tuple[VtaOp, ...]
    env: Environment

    @property
    def params(self) -> tuple[Buffer, ...]:
        return self.func.params

    @functools.cached_property
    def outputs(self) -> tuple[int, ...]:
        """Positions of the parameters the program writes (by STORE)."""
        return tuple(sorted({op.param for op in self.ops if isinstance(op, StoreOp)}))

    def summary(self) -> dict[str, int]:
        """Operation counts by kind and micro-ops executed (before the runtime adds NOPs/uop loads)."""
        kernels = [op for op in self.ops if isinstance(op, KernelOp)]
        return {
            "loads": sum(isinstance(op, LoadOp) for op in self.ops),
            "stores": sum(isinstance(op, StoreOp) for op in self.ops),
            "gemm": sum(op.gemm for op in kernels),
            "alu": sum(not op.gemm for op in kernels),
            "gemm_uops": sum(op.uop_count for op in kernels if op.gemm and not op.reset),
            "tokens": sum(len(op.pushes) for op in self.ops),
        }

    def run(self, *args: np.ndarray | DeviceBuffer, runtime: Runtime | None = None,
            export_to: str | os.PathLike[str] | None = None) -> RunInfo:
        """Run on ``runtime`` (default: the thread's runtime for the configured TARGET).

        Parameters
        ----------
        args : one numpy array (or DeviceBuffer of that runtime) per parameter, in order;
            output arrays are filled in place.
        export_to : also write the program as a golden-vector directory (one synchronize).

        Raises
        ------
        BackendError
            Wrong number, shape or dtype of arguments.
        ProgramError
            The runtime's verifier refused the stream (a compiler bug: please report it).
        """
        rt = runtime or get_runtime()
        if len(args) != len(self.params):
            raise BackendError(f"program {self.name} takes {len(self.params)} arguments "
                               f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        owned, buffers = [], []
        try:
            for k, (arg, param) in enumerate(zip(args, self.params)):
                if isinstance(arg, DeviceBuffer):
                    _check_size(self.name, k, param, arg.nbytes)
                    buffers.append(arg)
                    continue
                _check_array(self.name, k, param, arg)
                buf = rt.alloc(max(arg.nbytes, 1))
                owned.append(buf)
                if k not in self.outputs:
                    buf.copy_from(arg)
                buffers.append(buf)
            insns, runs, start = rt.stats.instructions, rt.stats.runs, time.perf_counter()
            for op in self.ops:
                op.emit(rt.queue, buffers)
            rt.queue.synchronize(export_to=export_to)
            wall = time.perf_counter() - start
            for k in self.outputs:
                if not isinstance(args[k], DeviceBuffer):
                    buffers[k].copy_to(args[k])
            return RunInfo(rt.stats.instructions - insns, rt.stats.runs - runs, wall)
        finally:
            for buf in owned:
                rt.free(buf)

    def disassemble(self) -> str:
        """The instruction stream as the runtime builds it, from a run on a private simulator."""
        out = io.StringIO()
        with Runtime("sim", env=self.env) as rt:
            rt.queue.set_debug_mode(DEBUG_DUMP_INSN)
            rt.queue.debug_out = out
            self.run(*(np.zeros(p.shape, p.dtype) for p in self.params), runtime=rt)
        return out.getvalue()

    def __str__(self) -> str:
        lines = [str(self.func), "", f"// {len(self.ops)} VTA operations"]
        lines += [f"{i:5d}  {op}" for i, op in enumerate(self.ops)]
        return "\n".join(lines)


def _check_array(name: str, k: int, param: Buffer, arg: object) -> None:
    if not isinstance(arg, np.ndarray):
        raise BackendError(f"program {name}: argument {k} ({param.name}) must be a numpy array or DeviceBuffer, "
                           f"got {type(arg).__name__}")
    if arg.shape != param.shape or arg.dtype != np.dtype(param.dtype):
        raise BackendError(f"program {name}: argument {k} ({param.name}) must be {param.dtype}{list(param.shape)}, "
                           f"got {arg.dtype}{list(arg.shape)}")
    if not arg.flags.c_contiguous:
        raise BackendError(f"program {name}: argument {k} ({param.name}) must be C-contiguous")


def _check_size(name: str, k: int, param: Buffer, nbytes: int) -> None:
    need = int(np.prod(param.shape)) * np.dtype(param.dtype).itemsize
    if nbytes < need:
        raise BackendError(f"program {name}: argument {k} ({param.name}) needs {need} bytes, the device buffer has "
                           f"{nbytes}")
