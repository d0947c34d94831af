"""``vta sim ...`` subcommands: run golden vectors in the simulator."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _run_vector(args: argparse.Namespace) -> int:
    from vta.errors import ProgramError
    from vta.sim.perf import estimate
    from vta.sim.vector import VectorError, load_vector, run_vector

    try:
        vector = load_vector(args.dir)
    except VectorError as e:
        print(f"vta sim run-vector: error: {e}", file=sys.stderr)
        return 2
    if args.timing_only:
        return _timing_only(vector, args, estimate, ProgramError)
    if args.fidelity == "pynq":
        from vta.sim.lint import lint_vector

        run = lint_vector(vector, hw_exec=args.hw_exec)
    else:
        run = run_vector(vector)
    if args.out:
        run.mem.tofile(args.out)
    counters = run.result.counters if run.result else None
    timing = run.result.timing if run.result else None
    divergences = [d.as_dict() for d in run.result.divergences] if run.result else []
    if args.json:
        print(json.dumps({
            "status": "refused" if run.error else "ok",
            "error_class": run.error.error_class if run.error else None,
            "message": str(run.error) if run.error else f"ran {vector.insn_count} instructions to FINISH",
            "counters": counters,
            "timing": timing.as_dict() if timing else None,
            **({"divergences": divergences} if args.fidelity == "pynq" else {}),
        }))
    elif run.error:
        print(f"refused: {run.error}")
    else:
        print(f"ok: ran {vector.insn_count} instructions to FINISH")
        for k, v in counters.items():
            print(f"  {k:18s} {v}")
        print(f"  predicted on Pynq-Z1: {timing.cycles} cycles = {timing.seconds * 1e3:.3f} ms, "
              f"{timing.gops:.2f} GOPS, GEMM utilization {timing.utilization:.1%}")
        for d in divergences:
            print(f"  pynq divergence: instruction {d['index']} ({d['module']}): {d['kind']}: {d['message']}")
    return 1 if run.error else 0


def _timing_only(vector, args: argparse.Namespace, estimate, program_error) -> int:
    """Predict the run from the instruction words alone (no data moved, few checks: see docs/perf-model.md)."""
    try:
        timing = estimate(vector.insn_bytes())
    except program_error as e:
        print(json.dumps({"status": "refused", "error_class": e.error_class, "message": str(e), "counters": None,
                          "timing": None})
              if args.json else f"refused: {e}")
        return 1
    if args.json:
        print(json.dumps({"status": "ok", "error_class": None, "message": "timing only: nothing executed",
                          "counters": None, "timing": timing.as_dict()}))
    else:
        print(f"predicted on Pynq-Z1: {timing.cycles} cycles = {timing.seconds * 1e3:.3f} ms, {timing.gops:.2f} GOPS")
    return 0


def _trace(args: argparse.Namespace) -> int:
    from vta.errors import ProgramError
    from vta.sim.perf import estimate
    from vta.sim.trace import MissingExtraError, write_json, write_png
    from vta.sim.vector import VectorError, load_vector

    try:
        timing = estimate(load_vector(args.dir).insn_bytes())
    except (VectorError, ProgramError) as e:
        print(f"vta sim trace: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, VectorError) else 1
    if args.json:
        write_json(timing, args.json)
    if args.png:
        try:
            write_png(timing, args.png)
        except MissingExtraError as e:
            print(f"vta sim trace: error: {e}", file=sys.stderr)
            return 2
    print(f"{timing.cycles} cycles = {timing.seconds * 1e3:.3f} ms at {timing.clock_mhz:g} MHz, "
          f"{timing.gops:.2f} GOPS, GEMM utilization {timing.utilization:.1%}")
    print(f"  {'module':8s} {'busy':>10s} {'token wait':>10s} {'starved':>10s} {'idle':>10s}")
    for name, m in timing.modules.items():
        print(f"  {name:8s} {m.busy:10d} {m.token_stall:10d} {m.starved:10d} {m.idle:10d}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulator tools")
    simsub = p.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    r = simsub.add_parser("run-vector", help="run one golden-vector directory; exit 0 ran, 1 refused, 2 bad directory")
    r.add_argument("dir", help="vector directory (meta.json + mem_in.bin)")
    r.add_argument("--out", help="write the final memory image to this file")
    r.add_argument("--json", action="store_true", help="print one JSON object with status, error class, counters, "
                                                       "timing")
    r.add_argument("--timing-only", action="store_true", help="predict the Pynq-Z1 timing without executing")
    r.add_argument("--fidelity", choices=("reference", "pynq"), default="reference",
                   help="pynq: also report every construct the Pynq bitstream executes differently")
    r.add_argument("--hw-exec", action="store_true", help="with --fidelity pynq: execute as the bitstream does")
    r.set_defaults(func=_run_vector)
    t = simsub.add_parser("trace", help="predicted Pynq-Z1 timeline of a vector's program (no execution)")
    t.add_argument("dir", help="vector directory")
    t.add_argument("--json", help="write a Chrome/Perfetto trace to this file")
    t.add_argument("--png", help="write a Gantt chart to this file (needs matplotlib)")
    t.set_defaults(func=_trace)
