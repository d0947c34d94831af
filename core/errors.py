"""One exception hierarchy for the whole stack, so callers can catch by layer.

The eleven program-error classes carry the names used by the golden vectors
(``error_class``), plus the instruction index and module where the defect was found.
"""

from __future__ import annotations

__all__ = [
    "PROGRAM_ERRORS",
    "BackendError",
    "BadMemoryTypeError",
    "BitstreamError",
    "BitstreamMismatch",
    "ConfigError",
    "DeadlockError",
    "DeviceBusy",
    "DeviceError",
    "DeviceTimeout",
    "DeviceUnrecoverable",
    "DramOutOfBoundsError",
    "EarlyFinishError",
    "EncodingError",
    "IllegalDepFlagError",
    "LoweringError",
    "MalformedInsnError",
    "MissingFinishError",
    "ProgramError",
    "RaceError",
    "RemoteError",
    "ScheduleError",
    "SimLimitError",
    "SramOutOfBoundsError",
    "UninitSramError",
    "UnknownOpcodeError",
    "VTAError",
]


class VTAError(Exception):
    """Base of every error raised by pynq-vta."""


class ConfigError(VTAError, ValueError):
    """A hardware configuration key is missing or has a value outside its allowed set."""


class EncodingError(VTAError, ValueError):
    """A value does not fit the instruction or micro-op field it is written to."""


class ScheduleError(VTAError, ValueError):
    """A schedule primitive was used in a way the hardware or the IR cannot express."""


class LoweringError(VTAError):
    """A valid-looking schedule could not be lowered to VTA instructions."""


class BackendError(VTAError):
    """A runtime backend was asked for something it cannot do (unknown name, dead buffer...)."""


class ProgramError(VTAError):
    """An instruction stream that must not run; subclasses name the defect.

    ``index`` is the instruction's position in the stream (``None`` when the defect is
    about the stream as a whole) and ``module`` the hardware module that executes it.
    """

    error_class = "program_error"

    def __init__(self, message: str, index: int | None = None, module: str | None = None):
        where = []
        if index is not None:
            where.append(f"instruction {index}")
        if module is not None:
            where.append(f"{module} module")
        prefix = f"{self.error_class}: " + (f"{', '.join(where)}: " if where else "")
        super().__init__(prefix + message)
        self.index = index
        self.module = module
        self.detail = message


class DeadlockError(ProgramError):
    """A module waits for a dependency token that can never arrive (or tokens are unbalanced)."""

    error_class = "deadlock"


class MissingFinishError(ProgramError):
    """The stream has no FINISH, so the run can never complete."""

    error_class = "missing_finish"


class EarlyFinishError(ProgramError):
    """FINISH is not ordered after every other instruction."""

    error_class = "early_finish"


class RaceError(ProgramError):
    """Two modules touch the same data with no dependency token ordering them."""

    error_class = "race"


class UninitSramError(ProgramError):
    """The program reads on-chip memory it never wrote."""

    error_class = "uninit_sram"


class SramOutOfBoundsError(ProgramError, IndexError):
    """An SRAM index or range passes the buffer depth."""

    error_class = "sram_oob"


class DramOutOfBoundsError(ProgramError, IndexError):
    """A DMA transfer touches memory that does not belong to the program."""

    error_class = "dram_oob"


class MalformedInsnError(ProgramError):
    """An instruction whose field combination is not well-formed."""

    error_class = "malformed_insn"


class BadMemoryTypeError(ProgramError):
    """A LOAD/STORE memory type that is not valid for that instruction."""

    error_class = "bad_memory_type"


class IllegalDepFlagError(ProgramError):
    """A dependency flag naming a queue the executing module does not have."""

    error_class = "illegal_dep_flag"


class UnknownOpcodeError(ProgramError):
    """An undefined opcode or ALU opcode."""

    error_class = "unknown_opcode"


class SimLimitError(ProgramError):
    """A legal instruction the simulator refuses: executing it would exceed a documented resource limit.

    Not a golden-vector class: the hardware would run the instruction (for hours); the simulator
    refuses before allocating rather than exhausting memory.
    """

    error_class = "sim_limit"


PROGRAM_ERRORS: dict[str, type[ProgramError]] = {
    cls.error_class: cls
    for cls in (
        DeadlockError, MissingFinishError, EarlyFinishError, RaceError, UninitSramError,
        SramOutOfBoundsError, DramOutOfBoundsError, MalformedInsnError, BadMemoryTypeError,
        IllegalDepFlagError, UnknownOpcodeError,
    )
}


class DeviceError(VTAError):
    """The device (board, emulator or simulator host) failed outside the program's control."""


class DeviceTimeout(DeviceError, TimeoutError):
    """The device did not signal completion before the wall-clock deadline."""


class DeviceBusy(DeviceError):
    """Another process owns the device."""


class DeviceUnrecoverable(DeviceError):
    """The device failed and re-programming it failed too: nothing runs until it is programmed again."""


class BitstreamError(VTAError):
    """A bitstream file is missing, unreadable or malformed."""


class BitstreamMismatch(BitstreamError):
    """A bitstream does not match the active configuration (name, HW_VER or checksum)."""


class RemoteError(VTAError):
    """A remote board refused a request or the connection failed."""
