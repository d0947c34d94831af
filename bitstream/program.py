"""Programming the FPGA through pynq (spec §6.3), only with a bitstream that matches the configuration.

This module and :class:`vta.driver.buffers.PynqAllocator` are the only users of ``pynq``, which
they import inside functions, so the rest of the package works on machines without a board.
Programming holds the device lock (:mod:`vta.driver.lock`): re-programming under a running
owner would wipe its device state mid-run, so a second programmer gets DeviceBusy instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from vta.bitstream.manifest import BitstreamRecord
from vta.bitstream.store import verify
from vta.config import Environment, get_env, target_choice
from vta.driver.lock import DeviceLock
from vta.errors import BitstreamError, DeviceError

__all__ = ["PYNQ_TARGETS", "program", "require_pynq_target"]

logger = logging.getLogger(__name__)

# Targets whose FPGA the pynq library programs with pynq.Bitstream(path).download() (spec §6.3).
PYNQ_TARGETS = ("pynq", "ultra96", "zcu104")


def require_pynq_target(env: Environment) -> None:
    """BitstreamError unless ``env`` targets a board pynq programs, saying what to set instead."""
    if env.TARGET in PYNQ_TARGETS:
        return
    choice = target_choice()
    advice = choice.board_advice() if choice.target == env.TARGET else \
        "set VTA_TARGET or VTA_CONFIG for a board, or pass a board configuration"
    raise BitstreamError(f"cannot program an FPGA for TARGET={env.TARGET!r}: pynq-vta programs TARGET in "
                         f"{', '.join(PYNQ_TARGETS)} (sim and tsim need no bitstream); {advice}")


def program(path: str | os.PathLike[str] | None = None, env: Environment | None = None, *,
            expected: BitstreamRecord | None = None,
            lock: DeviceLock | str | os.PathLike[str] | None = None) -> Path:
    """Verify a bitstream against the configuration, then program the FPGA with it.

    Parameters
    ----------
    path : path-like, optional
        The ``.bit`` file (default: the cache path of ``env``, filled by ``vta bitstream fetch``).
    env : Environment, optional
        The configuration the bitstream must match (default: the active one).
    expected : BitstreamRecord, optional
        The record to verify against instead of the manifest's entry for ``env``.
    lock : DeviceLock or path-like, optional
        The device lock: a :class:`DeviceLock` the caller holds (a device re-programming itself),
        or the lock file to hold while programming (default ``/tmp/vta-pynq.lock``).

    Returns
    -------
    Path
        The file that was programmed.

    Raises
    ------
    BitstreamMismatch
        The file's name, HW_VER, checksum or header does not match ``env`` (see :func:`verify`).
    BitstreamError
        The target is not programmed through pynq, pynq is not installed (not on a board), the
        file is missing or malformed, or pynq failed to program it.
    DeviceBusy
        Another owner holds the device lock (a runtime, a selftest, another ``vta program``).

    Example
    -------
    >>> program()  # on the board, with the cached release for the active configuration
    PosixPath('/home/xilinx/.vta_cache/pynq/0_0_2/1x16_i8w8a32_15_15_18_17.bit')
    """
    env = env if env is not None else get_env()
    require_pynq_target(env)
    try:
        import pynq
    except ImportError as e:
        if e.name == "pynq":
            raise BitstreamError(
                f"programming the FPGA needs the pynq library, which is not installed in {sys.executable}: "
                "run this on a Pynq board, in the environment pynq is installed in (on PYNQ 3.x images the "
                "/usr/local/share/pynq-venv venv), or install it with `pip install \".[board]\"` from the "
                "pynq-vta checkout"
            ) from None
        raise BitstreamError(f"the pynq library is installed but cannot be imported ({e}); "
                             "programming the FPGA needs a Pynq board") from e
    verified = verify(path, env, expected=expected)
    if isinstance(lock, DeviceLock):
        if not lock.held:
            raise DeviceError(f"programming the FPGA needs the device lock {lock.path} held by the caller")
        _download(pynq, verified.path)
    else:
        with DeviceLock(lock) as held:
            held.describe(f"programming the FPGA with {verified.path.name}")
            _download(pynq, verified.path)
    return verified.path


def _download(pynq: object, path: Path) -> None:
    logger.info("programming the FPGA with %s", path)
    try:
        pynq.Bitstream(str(path)).download()
    except Exception as e:  # pynq's FPGA manager raises OSError, RuntimeError, ValueError... depending on version
        raise BitstreamError(f"pynq could not program {path} onto the FPGA: {type(e).__name__}: {e}") from e
    logger.info("FPGA programmed with %s", path)
