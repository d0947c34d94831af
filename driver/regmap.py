"""The VTA register map of the Pynq bitstream (spec §5.1): the one definition of it.

The C driver's constants are generated from this file at build time (:func:`c_header`), and
the Python driver, the device wrapper and the board emulator import it, so an offset is
written exactly once. This module imports nothing from ``vta`` so ``setup.py`` can load it by
path before the package is installed.
"""

from __future__ import annotations

__all__ = ["ARG_REGS", "AUTO_RESTART", "CTRL", "CTRL_BITS", "DONE_RD", "DONE_WR", "MAP_RANGE", "MODULES",
           "REG_NAMES", "RUN_OK", "RUN_STATUS", "START", "c_header"]

MODULES = ("fetch", "load", "compute", "store")
MAP_RANGE = 0x1000  # VTA_IP_REG_MAP_RANGE: one 4 KiB window per HLS IP

CTRL = 0x00  # ap_ctrl of every module
# HLS block-level protocol bits of ap_ctrl: (bit, name).
CTRL_BITS = ((0, "start"), (1, "done"), (2, "idle"), (3, "ready"), (7, "auto_restart"))
START = 0x1  # VTA_START: fetch runs once per run
AUTO_RESTART = 0x81  # VTA_AUTORESTART: start + auto-restart, so load/compute/store keep consuming their queues
DONE_WR = 0x10  # compute `done` input side (the HLS inout port's write half; the protocol never writes it)
DONE_RD = 0x18  # compute `done` output side, polled by the driver

# Argument registers the run sequence writes every run: (module index, offset, name, value the protocol
# writes or None when it is the run's own argument). Data bases are zero: dram_base values are absolute.
ARG_REGS = ((0, 0x10, "insn_count", None), (0, 0x18, "insns", None), (1, 0x10, "inputs", 0),
            (1, 0x18, "weights", 0), (2, 0x20, "uops", 0), (2, 0x28, "biases", 0), (3, 0x10, "outputs", 0))

REG_NAMES = {(MODULES[m], off): name for m, off, name, _ in ARG_REGS} | {
    ("compute", DONE_WR): "done (write side)", ("compute", DONE_RD): "done"}

# vta_device_run status codes: name -> value.
RUN_STATUS = {"OK": 0, "TIMEOUT": 1, "BAD_DONE": 2}
RUN_OK = RUN_STATUS["OK"]


def c_header() -> str:
    """The ``#define``s the C driver is compiled with, generated from the tables above."""
    lines = ["/* Generated from driver/regmap.py at build time: do not edit. */",
             f"#define VTA_NUM_MODULES {len(MODULES)}",
             *(f"#define VTA_{name.upper()} {i}" for i, name in enumerate(MODULES)),
             f"#define VTA_IP_REG_MAP_RANGE 0x{MAP_RANGE:x}",
             f"#define VTA_CTRL 0x{CTRL:02x}",
             f"#define VTA_COMPUTE_DONE_RD_OFFSET 0x{DONE_RD:02x}",
             f"#define VTA_START 0x{START:x}",
             f"#define VTA_AUTORESTART 0x{AUTO_RESTART:x}",
             "#define VTA_DONE 0x1",
             *(f"#define VTA_RUN_{name} {value}" for name, value in RUN_STATUS.items()),
             f"#define VTA_NUM_ARG_REGS {len(ARG_REGS)}",
             "#define VTA_ARG_REGS { " + ", ".join(f"{{{m}, 0x{off:02x}}}" for m, off, _, _ in ARG_REGS) + " }",
             "#define VTA_ARG_VALUES(count, insns) { " + ", ".join(
                 {"insn_count": "(count)", "insns": "(insns)"}.get(name, str(v)) for _, _, name, v in ARG_REGS) + " }"]
    return "\n".join(lines) + "\n"
