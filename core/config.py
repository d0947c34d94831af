"""Where the active VTA configuration comes from: config files, ``VTA_*`` variables, the detected board.

The configuration itself (the 10 keys of ``vta_config.json`` and every derived constant) is
:class:`vta.environment.Environment`, re-exported here with its constants. This is the only
module that reads ``VTA_*`` environment variables: ``VTA_CONFIG`` (path of a config JSON),
``VTA_TARGET`` (overrides its TARGET), ``VTA_CACHE_PATH``, ``VTA_SIM_MAX_UOP_ITERATIONS``
(the simulator's per-instruction limit) and ``VTA_RPC_*`` (the remote board a host uses).
With neither VTA_CONFIG nor VTA_TARGET set, TARGET
follows the machine: the board's target on a detected Pynq board (:mod:`vta.board`), ``sim``
elsewhere; :func:`target_choice` says which and why.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vta.board import BOARD_FPGA_TARGETS, BOARD_TARGETS, DetectedBoard, TargetChoice, detect_board
from vta.environment import (
    HW_VERSIONS,
    INS_ELEM_BYTES,
    KEYS,
    MAX_XFER,
    PAGE_BYTES,
    TARGETS,
    UOP_ELEM_BYTES,
    Environment,
    innermost,
)
from vta.errors import ConfigError

__all__ = [
    "BOARD_FPGA_TARGETS", "HW_VERSIONS", "INS_ELEM_BYTES", "KEYS", "MAX_XFER", "PAGE_BYTES", "SIM_MAX_UOP_ITERATIONS",
    "TARGETS", "UOP_ELEM_BYTES", "Environment", "RemoteBoard", "TargetChoice",
    "cache_dir", "choose_target", "config_source", "default_config_path", "get_env", "load_config",
    "remote_board", "resolve_default", "sim_max_uop_iterations", "sudo_user_cache_dir", "target_choice",
]

logger = logging.getLogger(__name__)

# Default simulator limit on one GEMM/ALU instruction's micro-op iterations: 8 times a tile where
# each of the 2048 ACC entries sums 64 WGT entries (the golden vectors' largest is 8064), and a
# few seconds and a few hundred MB of simulator work at most.
SIM_MAX_UOP_ITERATIONS = 1 << 20
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
    active = innermost()
    return active if active is not None else _default()[0]


def config_source(path: str | os.PathLike[str] | None = None) -> str:
    """Where the active configuration comes from, in words (for ``vta info``)."""
    if path is not None:
        return f"{path} (--config)"
    if innermost() is not None:
        return "set by the program (an Environment used as a context manager)"
    file = os.environ.get("VTA_CONFIG")
    text = f"{file} (from VTA_CONFIG)" if file else f"{default_config_path()} (the bundled default; VTA_CONFIG unset)"
    target = os.environ.get("VTA_TARGET")
    return text + (f", TARGET={target} from VTA_TARGET" if target else "")


@dataclass(frozen=True)
class RemoteBoard:
    """The board a host reaches through ``vta rpc serve``, as the ``VTA_RPC_*`` variables name it."""

    url: str  # VTA_RPC_URL: tcp+tls://HOST:PORT (the service) or ssh://USER@HOST
    token_file: str | None = None  # VTA_RPC_TOKEN_FILE: the service's pre-shared token
    cafile: str | None = None  # VTA_RPC_CAFILE: the service's certificate
    command: str | None = None  # VTA_RPC_COMMAND: over SSH, the shell line that starts the server

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``Runtime("rpc", ...)`` for this board."""
        opts: dict[str, Any] = {"url": self.url, "token_file": self.token_file, "cafile": self.cafile}
        if self.command:
            opts["command"] = [self.command]
        return opts


def remote_board(environ: Mapping[str, str] | None = None) -> RemoteBoard | None:
    """The remote board ``VTA_RPC_URL`` names (with its ``VTA_RPC_*`` companions), or None when it is unset.

    ``Runtime("rpc")`` without a URL uses it, so a host's notebooks and scripts find the board
    the environment names.
    """
    environ = os.environ if environ is None else environ
    url = environ.get("VTA_RPC_URL", "").strip()
    others = [name for name in ("VTA_RPC_TOKEN_FILE", "VTA_RPC_CAFILE", "VTA_RPC_COMMAND") if environ.get(name)]
    if not url:
        if others:
            raise ConfigError(f"{others[0]} is set but VTA_RPC_URL is not: set VTA_RPC_URL to the board's "
                              "tcp+tls://HOST:PORT or ssh://USER@HOST, or unset " + ", ".join(others))
        return None
    return RemoteBoard(url, environ.get("VTA_RPC_TOKEN_FILE") or None, environ.get("VTA_RPC_CAFILE") or None,
                       environ.get("VTA_RPC_COMMAND") or None)
