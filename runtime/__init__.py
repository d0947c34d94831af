"""The VTA runtime: one API (spec §4) over pluggable backends, with a verifier before every launch."""

from __future__ import annotations

from vta.runtime.api import DeviceBuffer, Runtime, RuntimeStats, get_runtime
from vta.runtime.backend import BACKENDS, Backend, RunStatus, backend_for_target, create_backend
from vta.runtime.queue import DEBUG_DUMP_INSN, DEBUG_DUMP_UOP, DEBUG_FORCE_SERIAL, CommandQueue
from vta.runtime.uop_cache import UopKernel

__all__ = [
    "BACKENDS",
    "DEBUG_DUMP_INSN",
    "DEBUG_DUMP_UOP",
    "DEBUG_FORCE_SERIAL",
    "Backend",
    "CommandQueue",
    "DeviceBuffer",
    "RunStatus",
    "Runtime",
    "RuntimeStats",
    "UopKernel",
    "backend_for_target",
    "create_backend",
    "get_runtime",
]
