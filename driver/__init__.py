"""vta.driver: the Pynq board driver (C code via cffi), DMA buffers, the device lock, the emulated board."""

from vta.driver.buffers import DmaBuffer
from vta.driver.device import BoardDevice
from vta.driver.emulated import EmulatedBoard
from vta.driver.lock import DeviceLock

__all__ = ["BoardDevice", "DeviceLock", "DmaBuffer", "EmulatedBoard"]
