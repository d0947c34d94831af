"""Programming the FPGA through pynq (spec §6.3), only with a bitstream that matches the configuration.

This is the only module that imports ``pynq``, and only inside :func:`program`, so the rest of
the package works on machines without a board.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vta.bitstream.manifest import BitstreamRecord
from vta.bitstream.store import verify
from vta.config import Environment, get_env
from vta.errors import BitstreamError

__all__ = ["PYNQ_TARGETS", "program"]

# Targets whose FPGA the pynq library programs with pynq.Bitstream(path).download() (spec §6.3).
PYNQ_TARGETS = ("pynq", "ultra96", "zcu104")


def program(path: str | os.PathLike[str] | None = None, env: Environment | None = None, *,
            expected: BitstreamRecord | None = None) -> Path:
    """Verify a bitstream against the configuration, then program the FPGA with it.

    Parameters
    ----------
    path : path-like, optional
        The ``.bit`` file (default: the cache path of ``env``, filled by ``vta bitstream fetch``).
    env : Environment, optional
        The configuration the bitstream must match (default: the active one).
    expected : BitstreamRecord, optional
        The record to verify against instead of the manifest's entry for ``env``.

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

    Example
    -------
    >>> program()  # on the board, with the cached release for the active configuration
    PosixPath('/home/xilinx/.vta_cache/pynq/0_0_2/1x16_i8w8a32_15_15_18_17.bit')
    """
    env = env if env is not None else get_env()
    if env.TARGET not in PYNQ_TARGETS:
        raise BitstreamError(
            f"cannot program an FPGA for TARGET={env.TARGET!r}: pynq-vta programs TARGET in "
            f"{', '.join(PYNQ_TARGETS)} (sim and tsim need no bitstream; set VTA_TARGET or VTA_CONFIG for a board)"
        )
    try:
        import pynq
    except ImportError as e:
        if e.name == "pynq":
            raise BitstreamError(
                f"programming the FPGA needs the pynq library, which is not installed in {sys.executable}: "
                "run this on a Pynq board, with pynq-vta installed there by `pip install \".[board]\"` in its checkout"
            ) from None
        raise BitstreamError(f"the pynq library is installed but cannot be imported ({e}); "
                             "programming the FPGA needs a Pynq board") from e
    verified = verify(path, env, expected=expected)
    try:
        pynq.Bitstream(str(verified.path)).download()
    except Exception as e:  # pynq's FPGA manager raises OSError, RuntimeError, ValueError... depending on version
        raise BitstreamError(f"pynq could not program {verified.path} onto the FPGA: {type(e).__name__}: {e}") from e
    return verified.path
