"""Golden vectors placed in emulated DRAM, for driver tests."""

from __future__ import annotations

from vta.driver.buffers import DmaBuffer
from vta.driver.device import BoardDevice
from vta.sim.vector import Vector


def place(device: BoardDevice, vector: Vector) -> DmaBuffer:
    """The vector's image at its own physical address (vectors cannot be relocated)."""
    buf = device.allocator.at(vector.phys_base, len(vector.mem_in))
    buf.array[:] = vector.mem_in
    buf.flush()
    return buf


def run_vector(device: BoardDevice, vector: Vector, timeout_s: float | None = None) -> DmaBuffer:
    buf = place(device, vector)
    device.run(vector.insn_phys, vector.insn_count, timeout_s)
    buf.invalidate()
    return buf
