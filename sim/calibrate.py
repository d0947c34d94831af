"""Fit the cycle model's assumptions (:class:`~vta.sim.perf.HwTiming`) to measured board times.

Each measured line (``shared/calibration`` format or AutoTVM log lines) is compiled once with
its logged knobs for its own configuration (:mod:`vta.compiler.ops.logged`); its instruction
streams are kept, so trying a set of constants costs only the timing model. The fit is a
deterministic pattern search over a grid of physically meaningful values per constant
(bus rates in half bytes per cycle, latencies and initiation intervals in whole cycles),
minimising the mean absolute log ratio predicted/measured. Sessions the default profile
cannot explain get their own profile, differing only in the constants listed in
``PROFILE_PARAMS``. Cross-validation reports the error on lines a fit did not see.

Usage: ``python -m vta.sim.calibrate FILE [--json OUT] [--folds K]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.config import Environment
from vta.errors import VTAError
from vta.sim.perf import PROFILES, SESSION_PROFILES, ZYNQ_L2_BYTES, HwTiming, _TimingStream, estimate

__all__ = ["GRIDS", "Sample", "cross_validate", "fit", "fit_profiles", "load_samples", "main", "score", "summary"]

# The constants the fit moves, and the values it may give them.
GRIDS: dict[str, tuple[float, ...]] = {
    "read_bytes_per_cycle": tuple(x / 2 for x in range(4, 17)),
    "write_bytes_per_cycle": tuple(x / 2 for x in range(4, 17)),
    "axi_read_latency": tuple(range(8, 97, 8)),
    "axi_write_latency": tuple(range(8, 97, 8)),
    "insn_overhead": tuple(range(0, 97, 4)),
    "host_us": tuple(float(x) for x in range(0, 101, 5)),
    "host_ns_per_insn": tuple(float(x) for x in range(0, 2001, 100)),
    "l2_read_bytes_per_cycle": tuple(x / 2 for x in range(4, 17)),
}
# What a session profile may change with respect to the default one: the ALU's initiation interval
# (a different build of the compute module) and the DMA read path (a different board set-up).
PROFILE_PARAMS: dict[str, tuple[float, ...]] = {"alu_ii": tuple(range(1, 41)),
                                                "read_bytes_per_cycle": GRIDS["read_bytes_per_cycle"],
                                                "axi_read_latency": GRIDS["axi_read_latency"]}
# A session of at least _MIN_LINES lines that the default profile misses by more than this
# (median |log ratio|, i.e. the 10 % target) gets a profile.
_OWN_PROFILE = math.log(1.10)
_MIN_LINES = 3


@dataclass(frozen=True)
class Sample:
    """One measured line, compiled: its streams are costed again for every candidate set of constants."""

    line: int
    session: str
    measured_s: float
    env: Environment
    streams: tuple[_TimingStream, ...]

    def predict(self, hw: HwTiming) -> float:
        """Modeled board seconds (device time plus the host side of each run)."""
        with self.env:
            return sum(estimate(s, self.env, hw).wall_seconds for s in self.streams)


def load_samples(path: str | Path) -> tuple[list[Sample], dict[int, str]]:
    """Compile every measured line of ``path``; lines that cannot be compiled are returned as {line: reason}."""
    from vta.compiler.build import build
    from vta.compiler.ops.logged import LoggedLineError, build_line, read_lines
    from vta.sim.predict import not_as_logged, program_streams

    samples, errors = [], {}
    for n, ln in read_lines(path):
        if isinstance(ln, LoggedLineError):
            errors[n] = str(ln)
            continue
        if ln.measured_s is None:
            errors[n] = "no measured time"
            continue
        try:
            env, op = build_line(ln)
            note = not_as_logged(ln, env)
            if note:
                errors[n] = note
                continue
            with env:
                prog = build(op.schedule, op.args, op.name, env=env, like_tvm=True)
            streams = program_streams(prog)
        except VTAError as e:
            errors[n] = str(e)
            continue
        samples.append(Sample(n, ln.session or "", ln.measured_s,
                              env, tuple(_TimingStream(s, env) for s in streams)))
    return samples, errors


def _with(hw: HwTiming, name: str, value: float) -> HwTiming:
    if name == "alu_ii":
        return dataclasses.replace(hw, alu_ii_two_operand=int(value), alu_ii_immediate=int(value))
    return dataclasses.replace(hw, **{name: value})


def _value(hw: HwTiming, name: str, grid: tuple[float, ...]) -> float:
    """The constant's value; an unset bus rate (None: the full bus) is the grid's largest value."""
    v = hw.alu_ii_two_operand if name == "alu_ii" else getattr(hw, name)
    return max(grid) if v is None else v


def score(samples: Sequence[Sample], hw: HwTiming) -> float:
    """Mean |log(predicted / measured)| over ``samples``: the quantity the fit minimises."""
    return float(np.mean([abs(math.log(s.predict(hw) / s.measured_s)) for s in samples]))


def fit(samples: Sequence[Sample], start: HwTiming, grids: dict[str, tuple[float, ...]] = GRIDS) -> HwTiming:
    """Pattern search on the grids from ``start``: each constant in turn tries the grid values ``step``
    places either side of its own (8, 4, 2, then 1, and at 1 also every pair of constants moved
    together), taking the first move that lowers :func:`score` until none does.

    Values not on a grid start at the nearest grid value. Ties keep the current value, so the
    result depends only on the data, the grids and the start.
    """
    names = list(grids)
    pos = {n: int(np.argmin([abs(v - _value(start, n, grids[n])) for v in grids[n]])) for n in names}
    seen: dict[tuple[int, ...], float] = {}

    def at(p: dict[str, int]) -> HwTiming:
        hw = start
        for n in names:
            hw = _with(hw, n, grids[n][p[n]])
        return hw

    def cost(p: dict[str, int]) -> float:
        key = tuple(p[n] for n in names)
        if key not in seen:
            seen[key] = score(samples, at(p))
        return seen[key]

    def moves(step: int) -> Iterator[dict[str, int]]:
        for n in names:
            for d in (-step, step):
                yield {**pos, n: pos[n] + d}
        if step == 1:  # then pairs: constants that trade against each other (latency vs rate)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    for da, db in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
                        yield {**pos, a: pos[a] + da, b: pos[b] + db}

    best = cost(pos)
    for step in (8, 4, 2, 1):
        moved = True
        while moved:
            moved = False
            for cand in moves(step):
                if all(0 <= cand[n] < len(grids[n]) for n in names):
                    c = cost(cand)
                    if c < best - 1e-12:
                        pos, best, moved = cand, c, True
                        break
    return at(pos)


def fit_profiles(samples: Sequence[Sample], start: HwTiming | None = None
                 ) -> tuple[dict[str, HwTiming], dict[str, str]]:
    """The default profile and one profile per session it cannot explain; and each session's profile.

    Greedy: fit the default on the lines of every session that has no profile yet; if the worst
    session (of at least 3 lines: fewer cannot tell a profile from an outlier) misses by more
    than the 10 % target (median |log ratio|), it gets its own profile (the default's constants
    but ``PROFILE_PARAMS`` fitted on its lines alone) and the default is fitted again without it.
    """
    base = start or HwTiming(l2_bytes=ZYNQ_L2_BYTES)
    sessions = sorted({s.session for s in samples})
    own: list[str] = []
    while True:
        shared = [s for s in samples if s.session not in own]
        hw = fit(shared, base)
        errs = {name: _session_error(samples, name, hw) for name in sessions
                if name not in own and sum(s.session == name for s in samples) >= _MIN_LINES}
        worst = max(errs, key=lambda k: (errs[k], k), default=None)
        if worst is None or errs[worst] <= _OWN_PROFILE or len(own) + 1 == len(sessions):
            break
        own.append(worst)
    profiles, assigned = {"pynq": hw}, {}
    for name in own:
        key = profile_name(name)
        profiles[key] = fit([s for s in samples if s.session == name], hw, PROFILE_PARAMS)
        assigned[name] = key
    return profiles, assigned


def profile_name(session: str) -> str:
    """``pynq-`` and the session's first date, e.g. ``pynq-2019-08-09``."""
    m = re.search(r"\d{4}-\d{2}-\d{2}", session)
    tail = m.group(0) if m else re.sub(r"\W+", "-", session).strip("-")
    return f"pynq-{tail}"


def _session_error(samples: Sequence[Sample], session: str, hw: HwTiming) -> float:
    return float(np.median([abs(math.log(s.predict(hw) / s.measured_s)) for s in samples if s.session == session]))


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def summary(predicted: Sequence[float], measured: Sequence[float], sessions: Sequence[str]) -> dict[str, dict]:
    """Per session: lines, median |pred/meas - 1|, share within ±25 %, Spearman rank correlation (None below 3)."""
    out = {}
    for name in sorted(set(sessions)):
        idx = [i for i, s in enumerate(sessions) if s == name]
        p = [predicted[i] for i in idx]
        m = [measured[i] for i in idx]
        err = np.abs(np.array(p) / np.array(m) - 1)
        out[name] = {"lines": len(idx), "median_abs_error": float(np.median(err)),
                     "within_25pct": float(np.mean(err <= 0.25)), "max_abs_error": float(err.max()),
                     "spearman": _spearman(p, m)}
    return out


def _profile_for(session: str, assigned: dict[str, str], profiles: dict[str, HwTiming]) -> HwTiming:
    return profiles[assigned.get(session, "pynq")]


def cross_validate(samples: Sequence[Sample], folds: int = 5,
                   progress: Callable[[str], None] | None = None, start: HwTiming | None = None) -> dict[str, dict]:
    """Errors on lines the fit did not see: K interleaved folds of lines, and leave one session out.

    Fold k holds the lines at positions k, k+K, ... (deterministic). Leaving a session out, its
    lines are predicted with the default profile of the others (a new session has no profile yet).
    """
    pred: dict[str, list[float]] = {"folds": [0.0] * len(samples), "leave_one_session_out": [0.0] * len(samples)}
    for k in range(folds):
        train = [s for i, s in enumerate(samples) if i % folds != k]
        profiles, assigned = fit_profiles(train, start)
        for i in range(k, len(samples), folds):
            pred["folds"][i] = samples[i].predict(_profile_for(samples[i].session, assigned, profiles))
        if progress:
            progress(f"fold {k + 1}/{folds} done")
    for name in sorted({s.session for s in samples}):
        train = [s for s in samples if s.session != name]
        profiles, _ = fit_profiles(train, start)
        for i, s in enumerate(samples):
            if s.session == name:
                pred["leave_one_session_out"][i] = s.predict(profiles["pynq"])
        if progress:
            progress(f"without {name} done")
    meas = [s.measured_s for s in samples]
    sessions = [s.session for s in samples]
    return {kind: summary(p, meas, sessions) for kind, p in pred.items()}


def _changed(hw: HwTiming, base: HwTiming) -> dict[str, float]:
    return {f.name: getattr(hw, f.name) for f in dataclasses.fields(hw) if getattr(hw, f.name) != getattr(base, f.name)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vta.sim.calibrate", description=__doc__.splitlines()[0])
    ap.add_argument("file", help="measured lines (shared/calibration format or AutoTVM log)")
    ap.add_argument("--folds", type=int, default=5, help="K of the K-fold cross-validation (0: skip it)")
    ap.add_argument("--json", help="write the fit, the shipped constants and the cross-validation here")
    ap.add_argument("--shared-bus", action="store_true",
                    help="fit the model with every DMA sharing the one AXI port (HwTiming.shared_bus; not shipped)")
    ap.add_argument("--no-l2", action="store_true",
                    help="fit the model without the L2 cache that ACP reads look up (HwTiming.l2_bytes 0; not shipped)")
    args = ap.parse_args(argv)
    start = HwTiming(shared_bus=args.shared_bus, l2_bytes=0 if args.no_l2 else ZYNQ_L2_BYTES)
    try:
        samples, errors = load_samples(args.file)
    except VTAError as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 1
    for n, why in sorted(errors.items()):
        print(f"line {n}: not used: {why}")
    profiles, assigned = fit_profiles(samples, start)
    print("fitted profiles (constants that differ from HwTiming's defaults):")
    for name, hw in profiles.items():
        print(f"  {name}: {_changed(hw, HwTiming())}")
    print(f"sessions with their own profile: {assigned or 'none'}")
    same = profiles == dict(PROFILES) and assigned == dict(SESSION_PROFILES)
    print("shipped constants (vta.sim.perf.PROFILES / SESSION_PROFILES): "
          + ("reproduced" if same else "DIFFER from this fit"))
    pred = [s.predict(_profile_for(s.session, assigned, profiles)) for s in samples]
    fitted = summary(pred, [s.measured_s for s in samples], [s.session for s in samples])
    report = {"fitted": fitted}
    if args.folds:
        report.update(cross_validate(samples, args.folds, lambda m: print(f"  cross-validation: {m}", flush=True),
                                     start))
    for kind, per in report.items():
        print(f"{kind}:")
        for name, r in per.items():
            rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
            print(f"  {name:50s} n={r['lines']:2d} median |p/m-1| {r['median_abs_error']:6.1%}  within ±25% "
                  f"{r['within_25pct']:6.1%}  max {r['max_abs_error']:6.1%}  Spearman {rho}")
    if args.json:
        out = {"profiles": {k: dataclasses.asdict(v) for k, v in profiles.items()}, "sessions": assigned,
               "reproduced": same, "unused_lines": errors, **report}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if same else 3


if __name__ == "__main__":
    sys.exit(main())
