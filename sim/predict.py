"""Predict a compiled program's board time without executing it.

The runtime builds the instruction stream (micro-op loads, NOPs, FINISH, auto-flushes) as it
would for the board and its verifier checks it; the stream backend here only records each
run's instruction words instead of executing them. The timing model then costs the recorded
runs back to back (:func:`vta.sim.perf.concatenate`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from vta.runtime.backends.sim import SimBackend
from vta.sim.perf import PYNQ_Z1, HwTiming, Timing, concatenate, estimate

if TYPE_CHECKING:
    from vta.compiler.ops.logged import LoggedLine
    from vta.compiler.program import Program
    from vta.config import Environment

__all__ = ["DEFAULT_PROFILE", "not_as_logged", "predict_line", "predict_program", "profile_for", "program_streams",
           "session_of"]

DEFAULT_PROFILE = "pynq"


class _StreamBackend(SimBackend):
    """The simulator's DRAM and verifier, but a run records its instruction words and executes nothing."""

    capabilities = frozenset({"fixed_address"})

    def __init__(self, env: object = None):
        super().__init__(env)  # type: ignore[arg-type]
        self.streams: list[bytes] = []

    def _run(self, insn_phys: int, insn_count: int, timeout_s: float) -> Mapping[str, int]:
        found = self.dram.find(insn_phys, 16 * insn_count)
        assert found is not None, "the runtime launched a stream outside its instruction buffer"
        buf, offset = found
        self.streams.append(buf.data[offset:offset + 16 * insn_count].tobytes())
        return self._last

    def _predictor(self) -> None:
        return None


def program_streams(program: Program) -> list[bytes]:
    """The instruction words of each device run ``program`` makes, from zero-filled arguments, not executed."""
    from vta.runtime import Runtime

    backend = _StreamBackend(program.env)
    with Runtime(backend, env=program.env) as rt:
        program.run(*(np.zeros(p.shape, p.dtype) for p in program.params), runtime=rt)
    return backend.streams


def predict_program(program: Program, hw: HwTiming = PYNQ_Z1) -> Timing:
    """The modeled timing of ``program`` on the board with the assumptions ``hw`` (all its runs, back to back)."""
    return concatenate([estimate(s, program.env, hw) for s in program_streams(program)])


def session_of(target: str, timestamp: float | None) -> str | None:
    """The fitted session an AutoTVM line belongs to: same configuration (``1x16``/``4x8`` in the target)
    and measured on one of the session's days (sessions are named ``CONFIG YYYY-MM-DD[..MM-DD] (...)``)."""
    from vta.sim.perf import SESSION_PROFILES

    if timestamp is None:
        return None
    day = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).date().isoformat()
    for name in SESSION_PROFILES:
        m = re.match(r"(\w+) (\d{4})-(\d{2}-\d{2})(?:\.\.(\d{2}-\d{2}))?", name)
        if m and f"_{m.group(1)}_" in target and f"{m.group(2)}-{m.group(3)}" <= day <= \
                f"{m.group(2)}-{m.group(4) or m.group(3)}":
            return name
    return None


def profile_for(session: str | None, override: str | None = None) -> str:
    """The profile name for a measured line: ``override``, else the one fitted to its session, else the default."""
    from vta.errors import ConfigError
    from vta.sim.perf import PROFILES, SESSION_PROFILES

    name = override or SESSION_PROFILES.get(session or "", DEFAULT_PROFILE)
    if name not in PROFILES:
        raise ConfigError(f"unknown hardware profile {name!r}; profiles: {', '.join(PROFILES)}")
    return name


def not_as_logged(ln: LoggedLine, ran: Environment) -> str | None:
    """Why the program ``build_line`` made for ``ln`` (for ``ran``) is not the one its target names, or None.

    A dense line packed in blocks other than its target's (BATCH, BLOCK_IN): TVM's dense template
    tensorizes the (batch-inner, block) loops with the target's GEMM intrinsic, whose input buffer
    is declared (BATCH, BLOCK_IN); binding the logged region to it fails, so TVM could not have
    built that program for the target. It is predicted as the program for the blocks it is packed
    in (:func:`vta.compiler.ops.logged.program_env`), which the calibration does not fit on.
    """
    from vta.compiler.ops.logged import target_env

    target = target_env(ln.target)
    if ran.MODEL == target.MODEL:
        return None
    return (f"logged for {target.MODEL} but packed in {ln.data_shape[2]}x{ln.data_shape[3]} blocks "
            f"{list(ln.data_shape)}; TVM's GEMM intrinsic for {target.MODEL} takes {target.BATCH}x{target.BLOCK_IN} "
            f"input blocks, so TVM cannot have built this program for that target: predicted as the program "
            f"for {ran.MODEL} (inferred, not fitted)")


def predict_line(ln: LoggedLine, profile: str | None = None) -> dict:
    """Compile one logged line with its knobs for its target and model its board time (nothing executes).

    Returns ``line``, ``predicted_s`` (device plus host side, modeled), ``profile``, ``cycles``,
    ``instructions``, the line's ``task``/``session``, ``measured_s``/``ratio`` when it was
    measured, and ``note`` with ``ran_as`` (the configuration predicted) when the board cannot have run the
    logged program (:func:`not_as_logged`).
    Raises LoggedLineError (the line cannot be compiled) or ConfigError (unknown profile).
    """
    from vta.compiler.build import build
    from vta.compiler.ops.logged import LoggedLineError, build_line, target_env
    from vta.errors import LoweringError, ScheduleError
    from vta.sim.perf import PROFILES

    session = ln.session or session_of(ln.target, ln.timestamp)
    name = profile_for(session, profile)
    env, op = build_line(ln)
    with env:
        try:
            prog = build(op.schedule, op.args, op.name, env=env, like_tvm=True)
        except (ScheduleError, LoweringError) as e:
            raise LoggedLineError(f"{ln.task} with these knobs does not compile: {e}") from e
        streams = program_streams(prog)
        t = concatenate([estimate(s, env, PROFILES[name]) for s in streams])
    out = {"line": ln.line, "predicted_s": t.wall_seconds, "profile": name, "cycles": t.cycles,
           "instructions": sum(len(s) // 16 for s in streams), "task": ln.task, "target": env.MODEL,
           "session": session}
    if ln.log_line is not None:
        out["log_line"] = ln.log_line
    note = not_as_logged(ln, env)
    if note:
        out["note"], out["target"], out["ran_as"] = note, target_env(ln.target).MODEL, env.MODEL
    if ln.measured_s is not None:
        out["measured_s"] = ln.measured_s
        out["ratio"] = t.wall_seconds / ln.measured_s
    return out
