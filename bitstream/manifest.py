"""The released VTA bitstreams (spec §1.4 and §11), so a file can be checked before it is programmed.

Each record is one file of the public distribution (uwsampl/vta-distro ``bitstreams/``) with the
facts read from it: size, sha256 and the Xilinx ``.bit`` header fields. Files for configurations
not listed here are user builds; they are named by the same rule but cannot be checksummed.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.config import Environment
from vta.errors import BitstreamError

__all__ = ["RELEASES", "BitstreamRecord", "by_sha256", "expected_for", "extension_for", "lookup"]

# Targets whose FPGA is programmed from a file of the distribution; the others have none.
_EXTENSIONS = {"pynq": ".bit", "ultra96": ".bit", "zcu104": ".bit", "de10nano": ".rbf"}


@dataclass(frozen=True)
class BitstreamRecord:
    """One released bitstream file: where it lives in the distribution and what its bytes are.

    ``design``, ``tool_version``, ``part``, ``date``, ``time`` and ``data_length`` are the
    ``.bit`` header fields (spec §11); they are ``None`` for Intel ``.rbf`` files, which have no header.
    """

    target: str
    hw_ver: str
    name: str
    ext: str
    size: int
    sha256: str
    design: str | None = None
    tool_version: str | None = None
    part: str | None = None
    date: str | None = None
    time: str | None = None
    data_length: int | None = None

    @property
    def filename(self) -> str:
        return self.name + self.ext

    @property
    def key(self) -> str:
        """Path inside the distribution's ``bitstreams/`` folder, e.g. ``pynq/0.0.2/1x16_...bit``."""
        return f"{self.target}/{self.hw_ver}/{self.filename}"


def _xilinx(hw_ver: str, name: str, size: int, sha256: str, tool: str, stamp: str) -> BitstreamRecord:
    """A Pynq-Z1 release: every one is a ``vta_wrapper`` design for the 7z020clg484 with 4045564 data bytes."""
    date, time = stamp.split()
    return BitstreamRecord("pynq", hw_ver, name, ".bit", size, sha256, "vta_wrapper", tool, "7z020clg484",
                           date, time, 4045564)


RELEASES: tuple[BitstreamRecord, ...] = (
    _xilinx("0.0.2", "1x16_i8w8a32_15_15_18_17", 4045671,
            "0b24cdf9001d349512ab5fb34a0639056c87c8438dc3bce45be892ae43faf568", "2018.3", "2020/06/30 18:11:16"),
    _xilinx("0.0.1", "1x16_i8w8a32_15_15_18_17", 4045671,
            "c8808d2f4877a7ab4301b58b9926eb5070495feaf3fde401cec4e0228f2db7f3", "2018.3", "2019/07/25 14:20:34"),
    _xilinx("0.0.1", "4x8_i8w8a32_15_16_16_18", 4045671,
            "5a5cedeaa40d287f9756f444e9fffb0d8ed76f6b225ddbb54e542c417bad8f13", "2018.3", "2019/07/27 18:42:58"),
    _xilinx("0.0.0", "1x16x16_a8w8o8s32_15_15_18_17", 4045671,
            "0d91c64d53a298b650f413d802afe91c0b16a4b975eca2f22112a76fda9a0a7f", "2018.3", "2019/07/21 18:03:34"),
    _xilinx("0.0.0", "1x16x16_8bx8b_15_15_18_17_100MHz_7ns_v0_0_0", 4045675,
            "2aefdd2cb532ad3004fc07b7c29cea6bf2e2a6c4dee20ddd18314d8983d9134b", "2017.1_sdx", "2018/05/20 16:55:35"),
    _xilinx("0.0.0", "1x16x16_8bx8b_15_15_18_17_100MHz_8ns_v0_0_0", 4045675,
            "caadc596b5ff180fedb1aa2f034b4282a681a1b1431dc74b14816e6d079b9a82", "2017.1_sdx", "2018/05/20 16:22:00"),
    BitstreamRecord("de10nano", "0.0.1", "1x16_i8w8a32_15_15_18_17", ".rbf", 3803804,
                    "c0788a256dbcc281aefba8c985dd0ced5002f959bcfccccbc59b68558ae1060c"),
)


def extension_for(target: str) -> str:
    """File extension of a target's bitstream; BitstreamError for targets with no FPGA file (sim, tsim...)."""
    try:
        return _EXTENSIONS[target]
    except KeyError:
        raise BitstreamError(
            f"TARGET={target!r} has no FPGA bitstream; bitstreams exist for TARGET in "
            f"{', '.join(_EXTENSIONS)} (set VTA_TARGET=pynq or VTA_CONFIG to a board configuration)"
        ) from None


def lookup(target: str, hw_ver: str, name: str,
           manifest: tuple[BitstreamRecord, ...] = RELEASES) -> BitstreamRecord | None:
    """The release for a configuration, or None when it was never released (a user build)."""
    for record in manifest:
        if (record.target, record.hw_ver, record.name) == (target, hw_ver, name):
            return record
    return None


def by_sha256(sha256: str, manifest: tuple[BitstreamRecord, ...] = RELEASES) -> BitstreamRecord | None:
    """Which release a file is, from its checksum; None when it is not a released file."""
    for record in manifest:
        if record.sha256 == sha256.lower():
            return record
    return None


def expected_for(env: Environment, manifest: tuple[BitstreamRecord, ...] = RELEASES) -> BitstreamRecord:
    """The release the active configuration needs.

    Parameters
    ----------
    env : Environment
        The configuration whose TARGET, HW_VER and BITSTREAM name select the file.
    manifest : tuple of BitstreamRecord
        Records to search (default: the released files).

    Returns
    -------
    BitstreamRecord

    Raises
    ------
    BitstreamError
        The target has no bitstream file, or this configuration was never released (build your own).

    Example
    -------
    >>> from vta.config import load_config
    >>> expected_for(load_config(target="pynq")).key
    'pynq/0.0.2/1x16_i8w8a32_15_15_18_17.bit'
    """
    ext = extension_for(env.TARGET)
    record = lookup(env.TARGET, env.HW_VER, env.BITSTREAM, manifest)
    if record is None:
        released = ", ".join(r.key for r in manifest if r.target == env.TARGET) or "none"
        raise BitstreamError(
            f"no released bitstream for TARGET={env.TARGET} HW_VER={env.HW_VER}: "
            f"{env.TARGET}/{env.HW_VER}/{env.BITSTREAM}{ext} is not in the distribution; build your own "
            f"(released for {env.TARGET}: {released})"
        )
    return record
