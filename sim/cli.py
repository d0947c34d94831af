"""``vta sim ...`` subcommands: run golden vectors in the simulator."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _run_vector(args: argparse.Namespace) -> int:
    from vta.sim.vector import VectorError, load_vector, run_vector

    try:
        vector = load_vector(args.dir)
    except VectorError as e:
        print(f"vta sim run-vector: error: {e}", file=sys.stderr)
        return 2
    run = run_vector(vector)
    if args.out:
        run.mem.tofile(args.out)
    counters = run.result.counters if run.result else None
    if args.json:
        print(json.dumps({
            "status": "refused" if run.error else "ok",
            "error_class": run.error.error_class if run.error else None,
            "message": str(run.error) if run.error else f"ran {vector.insn_count} instructions to FINISH",
            "counters": counters,
        }))
    elif run.error:
        print(f"refused: {run.error}")
    else:
        print(f"ok: ran {vector.insn_count} instructions to FINISH")
        for k, v in counters.items():
            print(f"  {k:18s} {v}")
    return 1 if run.error else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulator tools")
    simsub = p.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    r = simsub.add_parser("run-vector", help="run one golden-vector directory; exit 0 ran, 1 refused, 2 bad directory")
    r.add_argument("dir", help="vector directory (meta.json + mem_in.bin)")
    r.add_argument("--out", help="write the final memory image to this file")
    r.add_argument("--json", action="store_true", help="print one JSON object with status, error class, counters")
    r.set_defaults(func=_run_vector)
