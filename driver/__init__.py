"""vta.driver: the Pynq board driver (C code via cffi), DMA buffers, the device lock, the emulated board.

The names are imported on first use (PEP 562), so ``vta --help`` does not load numpy and the simulator.
"""

from __future__ import annotations

import importlib

__all__ = ["BoardDevice", "DeviceLock", "DmaBuffer", "EmulatedBoard"]
_HOME = {"BoardDevice": "device", "DeviceLock": "lock", "DmaBuffer": "buffers", "EmulatedBoard": "emulated"}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
