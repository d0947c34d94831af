"""What a VTA hardware configuration is: the 10 keys, their allowed values, every derived constant.

Pure data: nothing here reads files or environment variables. Where the active configuration
comes from (``VTA_CONFIG``, ``VTA_TARGET``, the detected board) is :mod:`vta.config`, which
re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from vta.errors import ConfigError

__all__ = ["HW_VERSIONS", "INS_ELEM_BYTES", "KEYS", "MAX_XFER", "PAGE_BYTES", "TARGETS", "UOP_ELEM_BYTES",
           "Environment", "innermost"]

TARGETS = ("sim", "pynq", "ultra96", "zcu104", "de10nano", "intelfocl", "tsim")
HW_VERSIONS = ("0.0.1", "0.0.2")
# Allowed values per integer key. Widths are limited to what the simulator's numpy kernels
# implement (int8 x int8 -> int32, as in every released bitstream).
_INT_KEYS: dict[str, tuple[int, ...]] = {
    "LOG_INP_WIDTH": (3,),
    "LOG_WGT_WIDTH": (3,),
    "LOG_ACC_WIDTH": (5,),
    "LOG_BATCH": tuple(range(0, 5)),
    "LOG_BLOCK": tuple(range(1, 7)),
    "LOG_UOP_BUFF_SIZE": tuple(range(5, 20)),
    "LOG_INP_BUFF_SIZE": tuple(range(5, 24)),
    "LOG_WGT_BUFF_SIZE": tuple(range(5, 24)),
    "LOG_ACC_BUFF_SIZE": tuple(range(5, 24)),
}
KEYS = ("TARGET", "HW_VER", *_INT_KEYS)

# FPGA facts per target (spec §1.2): clock MHz, log2 AXI bus bits, IP base addresses.
_FPGA = {
    "pynq": (100, 6, (0x43C00000, 0x43C01000, 0x43C02000, 0x43C03000)),
    "ultra96": (333, 7, (0xA0000000, 0xA0001000, 0xA0002000, 0xA0003000)),
    "zcu104": (333, 7, (0xA0000000, 0xA0001000, 0xA0002000, 0xA0003000)),
    "de10nano": (100, 6, (0xFF220000, 0xFF221000, 0xFF222000, 0xFF223000)),
}

INS_ELEM_BYTES = 16
UOP_ELEM_BYTES = 4
MAX_XFER = 1 << 25  # largest physically contiguous buffer (driver.h VTA_MAX_XFER)
PAGE_BYTES = 4096


def _range_text(allowed: tuple[int, ...]) -> str:
    if len(allowed) > 2 and allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"{allowed[0]}..{allowed[-1]}"
    return ", ".join(map(str, allowed))


@dataclass(frozen=True)
class Environment:
    """A validated VTA configuration; derived constants are properties.

    Construct with :func:`vta.config.load_config` or ``Environment.from_dict``; use as a context
    manager to make it the active environment returned by :func:`vta.config.get_env`.

    Example
    -------
    >>> from vta.config import get_env
    >>> env = get_env()
    >>> env.BITSTREAM
    '1x16_i8w8a32_15_15_18_17'
    """

    TARGET: str
    HW_VER: str
    LOG_INP_WIDTH: int
    LOG_WGT_WIDTH: int
    LOG_ACC_WIDTH: int
    LOG_BATCH: int
    LOG_BLOCK: int
    LOG_UOP_BUFF_SIZE: int
    LOG_INP_BUFF_SIZE: int
    LOG_WGT_BUFF_SIZE: int
    LOG_ACC_BUFF_SIZE: int

    def __post_init__(self) -> None:
        if self.TARGET not in TARGETS:
            raise ConfigError(f"TARGET={self.TARGET!r} is not allowed; allowed values: {', '.join(TARGETS)}")
        if self.HW_VER not in HW_VERSIONS:
            raise ConfigError(
                f"HW_VER={self.HW_VER!r} is not allowed; allowed values: {', '.join(HW_VERSIONS)}"
            )
        for key, allowed in _INT_KEYS.items():
            value = getattr(self, key)
            if type(value) is not int or value not in allowed:
                raise ConfigError(f"{key}={value!r} is not allowed; allowed values: {_range_text(allowed)}")
        for name in ("UOP", "INP", "WGT", "ACC"):
            log_depth = getattr(self, f"LOG_{name}_BUFF_DEPTH")
            if not 0 <= log_depth <= 16:
                raise ConfigError(
                    f"LOG_{name}_BUFF_SIZE={getattr(self, f'LOG_{name}_BUFF_SIZE')} gives the "
                    f"{name} buffer 2^{log_depth} entries; allowed: 1 to 2^16 entries "
                    "(the sram_base field is 16 bits)"
                )
        uop_bits = self.UOP_DST_BITS + self.UOP_SRC_BITS + self.UOP_WGT_BITS
        if uop_bits > 32:
            raise ConfigError(
                f"LOG_ACC_BUFF_SIZE/LOG_INP_BUFF_SIZE/LOG_WGT_BUFF_SIZE give a {uop_bits}-bit "
                "micro-op; allowed: at most 32 bits"
            )
        if self.WGT_ELEM_BYTES > PAGE_BYTES or self.ACC_ELEM_BYTES > PAGE_BYTES:
            raise ConfigError(
                f"LOG_BATCH={self.LOG_BATCH}/LOG_BLOCK={self.LOG_BLOCK} give elements larger than a "
                f"{PAGE_BYTES}-byte page; allowed: at most {PAGE_BYTES} bytes per element"
            )

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], source: str = "config") -> Environment:
        """Build from the 10 keys; unknown or missing keys raise ConfigError naming them."""
        if not isinstance(cfg, Mapping):
            raise ConfigError(
                f"{source}: expected a JSON object with keys {', '.join(KEYS)}, got {type(cfg).__name__}")
        missing = [k for k in KEYS if k not in cfg]
        unknown = [k for k in cfg if k not in KEYS]
        if missing:
            raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}; required keys: {', '.join(KEYS)}")
        if unknown:
            names = ", ".join(map(str, unknown))
            raise ConfigError(f"{source}: unknown key(s) {names}; allowed keys: {', '.join(KEYS)}")
        return cls(**{k: cfg[k] for k in KEYS})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> Environment:
        return Environment.from_dict({**self.to_dict(), **changes})

    # --- element geometry ----------------------------------------------------------------
    @property
    def BATCH(self) -> int:
        return 1 << self.LOG_BATCH

    @property
    def BLOCK_IN(self) -> int:
        return 1 << self.LOG_BLOCK

    @property
    def BLOCK_OUT(self) -> int:
        return 1 << self.LOG_BLOCK

    LOG_BLOCK_IN = property(lambda self: self.LOG_BLOCK)
    LOG_BLOCK_OUT = property(lambda self: self.LOG_BLOCK)
    LOG_OUT_WIDTH = property(lambda self: self.LOG_INP_WIDTH)
    INP_WIDTH = property(lambda self: 1 << self.LOG_INP_WIDTH)
    WGT_WIDTH = property(lambda self: 1 << self.LOG_WGT_WIDTH)
    ACC_WIDTH = property(lambda self: 1 << self.LOG_ACC_WIDTH)
    OUT_WIDTH = property(lambda self: 1 << self.LOG_OUT_WIDTH)

    @property
    def LOG_OUT_BUFF_SIZE(self) -> int:
        return self.LOG_ACC_BUFF_SIZE + self.LOG_OUT_WIDTH - self.LOG_ACC_WIDTH

    INP_ELEM_BITS = property(lambda self: self.INP_WIDTH * self.BATCH * self.BLOCK_IN)
    WGT_ELEM_BITS = property(lambda self: self.WGT_WIDTH * self.BLOCK_OUT * self.BLOCK_IN)
    ACC_ELEM_BITS = property(lambda self: self.ACC_WIDTH * self.BATCH * self.BLOCK_OUT)
    OUT_ELEM_BITS = property(lambda self: self.OUT_WIDTH * self.BATCH * self.BLOCK_OUT)
    INP_ELEM_BYTES = property(lambda self: self.INP_ELEM_BITS // 8)
    WGT_ELEM_BYTES = property(lambda self: self.WGT_ELEM_BITS // 8)
    ACC_ELEM_BYTES = property(lambda self: self.ACC_ELEM_BITS // 8)
    OUT_ELEM_BYTES = property(lambda self: self.OUT_ELEM_BITS // 8)
    UOP_ELEM_BYTES = property(lambda self: UOP_ELEM_BYTES)
    INS_ELEM_BYTES = property(lambda self: INS_ELEM_BYTES)

    # --- buffer sizes and depths (hw_spec_const.h) ----------------------------------------
    UOP_BUFF_SIZE = property(lambda self: 1 << self.LOG_UOP_BUFF_SIZE)
    INP_BUFF_SIZE = property(lambda self: 1 << self.LOG_INP_BUFF_SIZE)
    WGT_BUFF_SIZE = property(lambda self: 1 << self.LOG_WGT_BUFF_SIZE)
    ACC_BUFF_SIZE = property(lambda self: 1 << self.LOG_ACC_BUFF_SIZE)
    OUT_BUFF_SIZE = property(lambda self: 1 << self.LOG_OUT_BUFF_SIZE)

    @property
    def LOG_UOP_BUFF_DEPTH(self) -> int:
        return self.LOG_UOP_BUFF_SIZE - 2  # 32-bit uops

    @property
    def LOG_INP_BUFF_DEPTH(self) -> int:
        return self.LOG_INP_BUFF_SIZE - (self.LOG_BATCH + self.LOG_BLOCK + self.LOG_INP_WIDTH - 3)

    @property
    def LOG_WGT_BUFF_DEPTH(self) -> int:
        return self.LOG_WGT_BUFF_SIZE - (2 * self.LOG_BLOCK + self.LOG_WGT_WIDTH - 3)

    @property
    def LOG_ACC_BUFF_DEPTH(self) -> int:
        return self.LOG_ACC_BUFF_SIZE - (self.LOG_BATCH + self.LOG_BLOCK + self.LOG_ACC_WIDTH - 3)

    UOP_BUFF_DEPTH = property(lambda self: 1 << self.LOG_UOP_BUFF_DEPTH)
    INP_BUFF_DEPTH = property(lambda self: 1 << self.LOG_INP_BUFF_DEPTH)
    WGT_BUFF_DEPTH = property(lambda self: 1 << self.LOG_WGT_BUFF_DEPTH)
    ACC_BUFF_DEPTH = property(lambda self: 1 << self.LOG_ACC_BUFF_DEPTH)
    OUT_BUFF_DEPTH = property(lambda self: 1 << self.LOG_ACC_BUFF_DEPTH)

    # --- ISA field widths (hw_spec_const.h; 0.0.1 and 0.0.2 differ) -----------------------
    @property
    def MEMOP_ID_BITS(self) -> int:
        return 3 if self.HW_VER == "0.0.2" else 2

    @property
    def ALU_OPCODE_BITS(self) -> int:
        return 3 if self.HW_VER == "0.0.2" else 2

    UOP_DST_BITS = property(lambda self: self.LOG_ACC_BUFF_DEPTH)
    UOP_WGT_BITS = property(lambda self: self.LOG_WGT_BUFF_DEPTH)

    @property
    def UOP_SRC_BITS(self) -> int:
        if self.HW_VER == "0.0.2":
            return max(self.LOG_ACC_BUFF_DEPTH, self.LOG_INP_BUFF_DEPTH)
        return self.LOG_INP_BUFF_DEPTH

    @property
    def ALU_SRC_FACTOR_BITS(self) -> int:
        return self.LOG_ACC_BUFF_DEPTH if self.HW_VER == "0.0.2" else self.LOG_INP_BUFF_DEPTH

    # --- naming -------------------------------------------------------------------------
    @property
    def BITSTREAM(self) -> str:
        """Bitstream base name, e.g. ``1x16_i8w8a32_15_15_18_17`` (spec §1.2)."""
        return (
            f"{self.BATCH}x{self.BLOCK_IN}_i{self.INP_WIDTH}w{self.WGT_WIDTH}a{self.ACC_WIDTH}"
            f"_{self.LOG_UOP_BUFF_SIZE}_{self.LOG_INP_BUFF_SIZE}_{self.LOG_WGT_BUFF_SIZE}_{self.LOG_ACC_BUFF_SIZE}"
        )

    @property
    def MODEL(self) -> str:
        return f"{self.TARGET}_{self.BITSTREAM}"

    # --- FPGA facts -----------------------------------------------------------------------
    @property
    def FPGA_FREQ_MHZ(self) -> int:
        return _FPGA.get(self.TARGET, _FPGA["pynq"])[0]

    @property
    def LOG_BUS_WIDTH(self) -> int:
        return _FPGA.get(self.TARGET, _FPGA["pynq"])[1]

    @property
    def IP_BASES(self) -> tuple[int, int, int, int]:
        """Fetch, load, compute, store register window bases."""
        return _FPGA.get(self.TARGET, _FPGA["pynq"])[2]

    inp_dtype = property(lambda self: f"int{self.INP_WIDTH}")
    wgt_dtype = property(lambda self: f"int{self.WGT_WIDTH}")
    acc_dtype = property(lambda self: f"int{self.ACC_WIDTH}")
    out_dtype = property(lambda self: f"int{self.OUT_WIDTH}")

    def derived(self) -> dict[str, Any]:
        """Every key and derived constant, for ``vta info``."""
        names = [f.name for f in fields(self)] + [
            "BATCH", "BLOCK_IN", "BLOCK_OUT", "INP_ELEM_BYTES", "WGT_ELEM_BYTES", "ACC_ELEM_BYTES",
            "OUT_ELEM_BYTES", "UOP_BUFF_DEPTH", "INP_BUFF_DEPTH", "WGT_BUFF_DEPTH", "ACC_BUFF_DEPTH",
            "OUT_BUFF_DEPTH", "LOG_OUT_BUFF_SIZE", "MEMOP_ID_BITS", "ALU_OPCODE_BITS", "UOP_DST_BITS",
            "UOP_SRC_BITS", "UOP_WGT_BITS", "BITSTREAM", "MODEL", "FPGA_FREQ_MHZ", "LOG_BUS_WIDTH",
        ]
        return {n: getattr(self, n) for n in names}

    # --- active environment -------------------------------------------------------------
    def __enter__(self) -> Environment:
        _STACK.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _STACK.pop()


_STACK: list[Environment] = []


def innermost() -> Environment | None:
    """The environment of the innermost ``with env:`` block, or None outside all of them."""
    return _STACK[-1] if _STACK else None
