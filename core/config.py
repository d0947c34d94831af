"""The VTA hardware configuration: the 10 keys of ``vta_config.json`` and every derived constant.

This is the only module that reads ``VTA_*`` environment variables:
``VTA_CONFIG`` (path of a config JSON), ``VTA_TARGET`` (overrides its TARGET),
``VTA_CACHE_PATH`` and ``VTA_SIM_MAX_UOP_ITERATIONS`` (the simulator's per-instruction limit). With
neither VTA_CONFIG nor VTA_TARGET set, TARGET follows the machine: the board's target on a detected
Pynq board (:mod:`vta.board`), ``sim`` elsewhere; :func:`target_choice` says which and why.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from vta.board import BOARD_FPGA_TARGETS, BOARD_TARGETS, DetectedBoard, TargetChoice, detect_board
from vta.errors import ConfigError

__all__ = [
    "BOARD_FPGA_TARGETS", "HW_VERSIONS", "SIM_MAX_UOP_ITERATIONS", "TARGETS", "Environment", "TargetChoice",
    "cache_dir", "choose_target", "config_source", "default_config_path", "get_env", "load_config",
    "resolve_default", "sim_max_uop_iterations", "sudo_user_cache_dir", "target_choice",
]

logger = logging.getLogger(__name__)

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
# Default simulator limit on one GEMM/ALU instruction's micro-op iterations: 8 times a tile where
# each of the 2048 ACC entries sums 64 WGT entries (the golden vectors' largest is 8064), and a
# few seconds and a few hundred MB of simulator work at most.
SIM_MAX_UOP_ITERATIONS = 1 << 20
MAX_XFER = 1 << 25  # largest physically contiguous buffer (driver.h VTA_MAX_XFER)
PAGE_BYTES = 4096


def _range_text(allowed: tuple[int, ...]) -> str:
    if len(allowed) > 2 and allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"{allowed[0]}..{allowed[-1]}"
    return ", ".join(map(str, allowed))


@dataclass(frozen=True)
class Environment:
    """A validated VTA configuration; derived constants are properties.

    Construct with :func:`load_config` or ``Environment.from_dict``; use as a context
    manager to make it the active environment returned by :func:`get_env`.

    Example
    -------
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
_DEFAULT: list[tuple[Environment, TargetChoice]] = []


def default_config_path(target: str = "sim") -> Path:
    """Path of a bundled config: the Pynq-Z1 parameters with TARGET sim or pynq."""
    name = "pynq_sample.json" if target == "pynq" else "vta_config.json"
    return Path(str(resources.files("vta") / "configs" / name))


def load_config(path: str | os.PathLike[str] | None = None, target: str | None = None) -> Environment:
    """Read a config JSON (default: the bundled Pynq configuration) into an Environment."""
    path = Path(path) if path is not None else default_config_path()
    try:
        cfg = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(path)!r}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid JSON: {e}") from e
    if target is not None and isinstance(cfg, dict):
        cfg["TARGET"] = target
    return Environment.from_dict(cfg, source=str(path))


def cache_dir() -> Path:
    """Where bitstreams are cached: ``$VTA_CACHE_PATH``, else ``~/.vta_cache`` (the directory upstream VTA fills)."""
    root = os.environ.get("VTA_CACHE_PATH")
    return Path(root).expanduser() if root else Path.home() / ".vta_cache"


def sim_max_uop_iterations() -> int:
    """The simulator's per-instruction limit on GEMM/ALU micro-op iterations (iter_out x iter_in x uops).

    ``$VTA_SIM_MAX_UOP_ITERATIONS`` when set, else :data:`SIM_MAX_UOP_ITERATIONS`. An ALU
    instruction whose iterations form a chain of dependent steps may have 1/16 of it in steps.
    Each iteration costs the simulator about 100 bytes and 1-2 us while it plans and runs.
    """
    raw = os.environ.get("VTA_SIM_MAX_UOP_ITERATIONS")
    if raw is None:
        return SIM_MAX_UOP_ITERATIONS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"VTA_SIM_MAX_UOP_ITERATIONS must be a positive integer, got {raw!r}")
    return value


def sudo_user_cache_dir(environ: Mapping[str, str] | None = None,
                        home_of: Callable[[str], str] | None = None) -> Path | None:
    """Under ``sudo`` with the default cache, the invoking user's ``~/.vta_cache`` (else None).

    ``sudo`` resets HOME and drops VTA_CACHE_PATH, so ``sudo vta program`` would look in root's
    cache for the bitstream that ``vta bitstream fetch``, run without sudo, put in the user's.
    """
    environ = os.environ if environ is None else environ
    user = environ.get("SUDO_USER", "")
    if not user or user == "root" or environ.get("VTA_CACHE_PATH"):
        return None
    try:
        home = home_of(user) if home_of is not None else pwd.getpwnam(user).pw_dir
    except KeyError:
        return None
    path = Path(home) / ".vta_cache"
    return None if path == cache_dir() else path


def _unset_hint(board: DetectedBoard | None) -> str:
    if board is not None and board.target is not None:
        return f"or unset VTA_TARGET to use the detected {board.name} board (TARGET {board.target})"
    return "or unset VTA_TARGET to use the simulator (no Pynq board was detected)"


def _check_board(target: str, what: str, board: DetectedBoard | None, fix: str) -> None:
    if target in BOARD_FPGA_TARGETS and board is not None and board.target not in (None, target):
        raise ConfigError(f"{what} is {target!r}, but this machine is a {board.name} board ({board.description}), "
                          f"whose TARGET is {board.target!r}: {fix}")


def choose_target(environ: Mapping[str, str], config_target: str, board: DetectedBoard | None) -> TargetChoice:
    """Pick TARGET: ``VTA_TARGET``, else the TARGET of the ``VTA_CONFIG`` file, else the detected board's, else sim.

    An explicit setting that contradicts the detected board, or is not a TARGET, raises
    ConfigError saying exactly what to set instead.
    """
    explicit = environ.get("VTA_TARGET", "").strip()
    if explicit:
        if explicit not in TARGETS:
            raise ConfigError(f"VTA_TARGET={explicit!r} is not allowed; allowed values: {', '.join(TARGETS)}; "
                              f"set one of them, {_unset_hint(board)}")
        fix = f"set VTA_TARGET={board.target}, {_unset_hint(board)}" if board else ""
        _check_board(explicit, "VTA_TARGET", board, fix)
        return TargetChoice(explicit, "VTA_TARGET", f"VTA_TARGET={explicit} is set", board)
    config = environ.get("VTA_CONFIG", "").strip()
    if config:
        fix = f"set its TARGET to {board.target!r} (or set VTA_TARGET={board.target})" if board else ""
        _check_board(config_target, f"TARGET in VTA_CONFIG={config}", board, fix)
        return TargetChoice(config_target, "VTA_CONFIG", f"VTA_CONFIG={config} sets TARGET {config_target!r}", board)
    if board is None:
        return TargetChoice("sim", "default", "no Pynq board was detected (no device-tree pynq_board or model naming "
                            "one, no BOARD setting), so the simulator is used")
    if board.target is None:
        boards = ", ".join(sorted(BOARD_TARGETS))
        return TargetChoice("sim", "default", f"the detected board has no VTA target ({board.description}; VTA "
                            f"runs on {boards}), so the simulator is used", board)
    return TargetChoice(board.target, "detected", f"a {board.name} board was detected ({board.description})", board)


def resolve_default(environ: Mapping[str, str] | None = None, **probe: Any) -> tuple[Environment, TargetChoice]:
    """The environment and TARGET choice that :func:`get_env` uses, from ``environ`` and board detection.

    ``probe`` goes to :func:`vta.board.detect_board` (``dt_roots``, ``etc_environment``), so
    tests can point detection at fake device-tree files.
    """
    environ = os.environ if environ is None else environ
    board = detect_board(environ, **probe)
    explicit = environ.get("VTA_TARGET", "").strip() or None
    if explicit is not None:
        choose_target(environ, "sim", board)  # validates VTA_TARGET before the file is read
    env = load_config(environ.get("VTA_CONFIG", "").strip() or None, explicit)
    choice = choose_target(environ, env.TARGET, board)
    return env.replace(TARGET=choice.target), choice


def _default() -> tuple[Environment, TargetChoice]:
    if not _DEFAULT:
        env, choice = resolve_default()
        logger.info("TARGET %s: %s", choice.target, choice.reason)
        _DEFAULT.append((env, choice))
    return _DEFAULT[0]


def target_choice() -> TargetChoice:
    """How the default environment's TARGET was chosen (for ``vta info`` and error messages)."""
    return _default()[1]


def get_env() -> Environment:
    """The active environment: the innermost ``with env:``, else the default (VTA_CONFIG/VTA_TARGET/detected board)."""
    if _STACK:
        return _STACK[-1]
    return _default()[0]


def config_source(path: str | os.PathLike[str] | None = None) -> str:
    """Where the active configuration comes from, in words (for ``vta info``)."""
    if path is not None:
        return f"{path} (--config)"
    if _STACK:
        return "set by the program (an Environment used as a context manager)"
    file = os.environ.get("VTA_CONFIG")
    text = f"{file} (from VTA_CONFIG)" if file else f"{default_config_path()} (the bundled default; VTA_CONFIG unset)"
    target = os.environ.get("VTA_TARGET")
    return text + (f", TARGET={target} from VTA_TARGET" if target else "")
