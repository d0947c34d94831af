"""``vta model predict FILE``: modeled board time of every logged configuration, against its measurement."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

__all__ = ["register"]


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def _predict(args: argparse.Namespace) -> int:
    from vta.compiler.ops.logged import LoggedLineError, read_lines
    from vta.errors import ConfigError, VTAError
    from vta.sim.predict import predict_line, profile_for

    try:
        if args.profile:
            profile_for(None, args.profile)
        lines = list(read_lines(args.file))
    except ConfigError as e:
        print(f"vta model predict: error: {e}", file=sys.stderr)
        return 2
    rows = []
    for n, ln in lines:
        if isinstance(ln, LoggedLineError):
            rows.append({"line": n, "error": str(ln)})
        else:
            try:
                rows.append(predict_line(ln, args.profile))
            except VTAError as e:
                rows.append({"line": n, "task": ln.task, "session": ln.session, "error": str(e)})
        if not args.json:
            _print_row(rows[-1])
    measured = [r for r in rows if "ratio" in r]
    out = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(rows, indent=1))
    failed = sum("error" in r for r in rows)
    print(f"{len(rows) - failed} of {len(rows)} line(s) predicted (modeled, nothing executed), {failed} error(s)",
          file=out)
    _print_summary(measured, "summary", out)
    noted = [r["line"] for r in measured if "note" in r]
    if noted:
        print(f"line(s) {', '.join(map(str, noted))} carry a note (predicted as an inferred program, not the "
              "logged one); without them:", file=out)
        _print_summary([r for r in measured if "note" not in r], "  summary", out)
    return 1 if failed else 0


def _print_summary(measured: list[dict], label: str, out: TextIO) -> None:
    from vta.sim.calibrate import summary

    if not measured:
        return
    stats = summary([r["predicted_s"] for r in measured], [r["measured_s"] for r in measured],
                    [r.get("session") or r["target"] for r in measured])
    for name, r in stats.items():
        print(f"{label} {name}: {r['lines']} measured line(s), median |predicted/measured - 1| "
              f"{r['median_abs_error']:.1%}, within ±25 % {r['within_25pct']:.1%}, Spearman "
              f"{_fmt(r['spearman'], '.3f')}", file=out)


def _print_row(r: dict) -> None:
    if "error" in r:
        print(f"line {r['line']}: error: {r['error']}")
        return
    ratio = f"  measured {r['measured_s'] * 1e3:.3f} ms  ratio {r['ratio']:.3f}" if "ratio" in r else ""
    note = f"\n  note: {r['note']}" if "note" in r else ""
    print(f"line {r['line']}: predicted {r['predicted_s'] * 1e3:.3f} ms (modeled, profile {r['profile']}){ratio}{note}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="performance model tools (modeled Pynq times, no board needed)")
    msub = p.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    q = msub.add_parser("predict", help="compile each logged configuration and model its board time; "
                        "exit 0 all predicted, 1 some lines failed, 2 unreadable file or unknown profile")
    q.add_argument("file", help="lines in the shared/calibration format or an AutoTVM log")
    q.add_argument("--json", action="store_true", help="print a JSON list, one object per line (summary on stderr)")
    q.add_argument("--profile", help="hardware profile for every line (default: the line's session's, else pynq)")
    q.set_defaults(func=_predict)
