"""pynq-vta: compiler, runtime, simulator and board driver for the VTA accelerator.

Importing ``vta`` is cheap: no device is probed and no config file is read until
:func:`get_env` is first called, and ``vta.compile`` (whole networks, the compiler and numpy)
is imported on first use.
"""

from __future__ import annotations

from typing import Any

from vta.config import Environment, get_env, load_config
from vta.errors import VTAError

__all__ = ["Environment", "VTAError", "compile", "get_env", "load_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "compile":  # vta.compile(quantized_graph, backend) -> Network, as TVM users expect
        from vta.compiler.graph import compile_network

        return compile_network
    raise AttributeError(f"module 'vta' has no attribute {name!r}")
