"""``vta sim ...`` subcommands: run golden vectors in the simulator and check them against their golden files.

Errors (bad directories, unwritable outputs) are raised as VTAErrors and printed by ``vta.cli``;
these functions only print results. What a run is compared against is always stated: the golden
files present (``mem_out.bin``, ``stats.json``, ``expect.json``), or that no checks ran.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vta.errors import VTAError

if TYPE_CHECKING:
    from vta.sim.vector import Vector, VectorRun

__all__ = ["EXIT_MISMATCH", "compare_golden", "register"]

EXIT_MISMATCH = 3  # ran (or was refused) but differs from the vector's golden files


def compare_golden(vector: Vector, run: VectorRun) -> tuple[list[str], str | None]:
    """(golden files compared, first mismatch or None) for a run of ``vector``.

    expect.json names the refusal class the program must get; mem_out.bin is the image after the
    run (first differing byte: image offset, physical address, expected, got); stats.json holds the
    counters (first differing counter).
    """
    import numpy as np

    checked: list[str] = []
    if vector.expect is not None:
        checked.append("expect.json")
        want = vector.expect.get("class")
        got = run.error.error_class if run.error else None
        if got != want:
            return checked, (f"expect.json: the program must be refused with class {want!r}, "
                             + (f"but it was refused with {got!r}" if got else "but it ran to FINISH"))
    if run.error is not None:
        ran = [name for name, there in (("mem_out.bin", vector.mem_out), ("stats.json", vector.stats))
               if there is not None]
        if ran:
            return checked + ran, (f"refused ({run.error}), but the vector has "
                                   f"{' and '.join(ran)}: the reference ran the program")
        return checked, None
    if vector.mem_out is not None:
        checked.append("mem_out.bin")
        if len(vector.mem_out) != len(run.mem):
            return checked, (f"mem_out.bin has {len(vector.mem_out)} bytes, the image after the run "
                             f"{len(run.mem)}")
        diff = np.flatnonzero(run.mem != vector.mem_out)
        if len(diff):
            at = int(diff[0])
            return checked, (f"mem_out.bin: {len(diff)} byte(s) differ; first at image offset {at} (address "
                             f"0x{vector.phys_base + at:x}): expected 0x{int(vector.mem_out[at]):02x}, "
                             f"got 0x{int(run.mem[at]):02x}")
    if vector.stats is not None:
        checked.append("stats.json")
        counters = run.result.counters
        for key in sorted(set(vector.stats) | set(counters)):
            if vector.stats.get(key) != counters.get(key):
                return checked, (f"stats.json: counter {key}: expected {vector.stats.get(key)!r}, "
                                 f"got {counters.get(key)!r}")
    return checked, None


def _write(path: str, what: str, write: Callable[[], object]) -> None:
    """Run ``write``; an OSError (disk full, device) becomes a VTAError naming the option and the file."""
    try:
        write()
    except OSError as e:
        raise VTAError(f"{what} {path!r}: cannot write the file: {e.strerror or e}") from e


def _image_change(vector: Vector, hw_run: VectorRun) -> str:
    """How the bitstream-faithful image differs from the reference execution of the same vector."""
    import numpy as np

    from vta.sim.vector import run_vector

    ref = run_vector(vector)
    if ref.error is not None:
        return f"the reference execution refuses the program ({ref.error.error_class}); hw-exec ran it"
    diff = np.flatnonzero(ref.mem != hw_run.mem)
    if not len(diff):
        return "the image is identical to the reference execution's"
    at = int(diff[0])
    return (f"the image changed: {len(diff)} byte(s) differ from the reference execution, first at image offset "
            f"{at} (address 0x{vector.phys_base + at:x}): reference 0x{int(ref.mem[at]):02x}, "
            f"hw-exec 0x{int(hw_run.mem[at]):02x}")


def _run_vector(args: argparse.Namespace) -> int:
    from vta.cli import check_output_path
    from vta.sim.vector import load_vector, run_vector

    if args.hw_exec and args.fidelity != "pynq":
        raise VTAError("--hw-exec executes as the Pynq bitstream does and needs --fidelity pynq")
    if args.out:
        if args.timing_only:
            raise VTAError("--out writes the image after the run, but --timing-only runs nothing")
        check_output_path(args.out, "--out")
    vector = load_vector(args.dir)
    if args.timing_only:
        return _timing_only(vector, args)
    if args.fidelity == "pynq":
        from vta.sim.lint import lint_vector

        run = lint_vector(vector, hw_exec=args.hw_exec)
    else:
        run = run_vector(vector)
    if args.out:
        _write(args.out, "--out", lambda: Path(args.out).write_bytes(run.mem.tobytes()))
    if args.hw_exec:  # the golden files describe the reference execution, not the bitstream's
        checked, mismatch, change = [], None, None if run.error else _image_change(vector, run)
    else:
        (checked, mismatch), change = compare_golden(vector, run), None
    status = "mismatch" if mismatch else "refused" if run.error else "ok"
    if args.json:
        _print_json(vector, run, args, status, checked, mismatch, change)
    else:
        _print_text(vector, run, args, checked, mismatch, change)
    return EXIT_MISMATCH if mismatch else 1 if run.error else 0


def _message(vector, run, args, checked: list[str], mismatch: str | None) -> str:
    if mismatch:
        return mismatch
    what = str(run.error) if run.error else f"ran {vector.insn_count} instructions to FINISH"
    if args.hw_exec:
        return what + "; golden files not compared (they hold the reference execution, not the bitstream's)"
    if checked:
        return what + f"; matches {', '.join(checked)}"
    return what + "; no golden files to compare (mem_out.bin, stats.json, expect.json)"


def _print_json(vector, run, args, status, checked, mismatch, change) -> None:
    result = run.result
    print(json.dumps({
        "status": status,
        "error_class": run.error.error_class if run.error else None,
        "message": _message(vector, run, args, checked, mismatch),
        "checked": checked,
        "counters": result.counters if result else None,
        "timing": result.timing.as_dict() if result else None,
        **({"divergences": [d.as_dict() for d in result.divergences] if result else []}
           if args.fidelity == "pynq" else {}),
        **({"hw_exec": change} if args.hw_exec else {}),
    }))


def _print_text(vector, run, args, checked, mismatch, change) -> None:
    message = _message(vector, run, args, checked, mismatch)
    print(f"mismatch: {message}" if mismatch else f"refused: {message}" if run.error else f"ok: {message}")
    result = run.result
    if result is None:
        return
    for k, v in result.counters.items():
        print(f"  {k:18s} {v}")
    t = result.timing
    print(f"  modeled on Pynq-Z1: {t.cycles} cycles = {t.seconds * 1e3:.3f} ms, {t.gops:.2f} GOPS, "
          f"GEMM utilization {t.utilization:.1%}")
    if args.fidelity == "pynq":
        for d in (d.as_dict() for d in result.divergences):
            print(f"  pynq divergence: instruction {d['index']} ({d['module']}): {d['kind']}: {d['message']}")
        if not result.divergences:
            print("  pynq fidelity: no divergences (the Pynq bitstream executes this program as the reference)")
    if change is not None:
        print(f"  hw-exec: executed as the Pynq bitstream does; {change}")


def _timing_only(vector, args: argparse.Namespace) -> int:
    """Predict the run from the instruction words alone: only decoding and deadlock are checked."""
    from vta.errors import ProgramError
    from vta.sim.perf import estimate

    try:
        timing = estimate(vector.insn_bytes())
    except ProgramError as e:
        print(json.dumps({"status": "refused", "error_class": e.error_class, "message": str(e), "counters": None,
                          "timing": None})
              if args.json else f"refused: {e}")
        return 1
    note = ("timing only: nothing executed; only decoding and deadlock were checked (no race, bounds, "
            "uninitialised-SRAM or golden-output checks ran)")
    if args.json:
        print(json.dumps({"status": "timing-only", "error_class": None, "message": note, "checked": [],
                          "counters": None, "timing": timing.as_dict()}))
    else:
        print(note)
        print(f"modeled on Pynq-Z1: {timing.cycles} cycles = {timing.seconds * 1e3:.3f} ms, {timing.gops:.2f} GOPS")
    return 0


def _trace(args: argparse.Namespace) -> int:
    from vta.cli import check_output_path
    from vta.sim.perf import estimate
    from vta.sim.trace import write_json, write_png
    from vta.sim.vector import load_vector

    if args.json:
        check_output_path(args.json, "--json")
    if args.png:
        check_output_path(args.png, "--png", suffix=".png")
    timing = estimate(load_vector(args.dir).insn_bytes())
    if args.json:
        _write(args.json, "--json", lambda: write_json(timing, args.json))
    if args.png:
        _write(args.png, "--png", lambda: write_png(timing, args.png))
    print(f"modeled: {timing.cycles} cycles = {timing.seconds * 1e3:.3f} ms at {timing.clock_mhz:g} MHz, "
          f"{timing.gops:.2f} GOPS, GEMM utilization {timing.utilization:.1%}")
    print(f"  {'module':8s} {'busy':>10s} {'token wait':>10s} {'starved':>10s} {'idle':>10s}")
    for name, m in timing.modules.items():
        print(f"  {name:8s} {m.busy:10d} {m.token_stall:10d} {m.starved:10d} {m.idle:10d}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulator tools")
    simsub = p.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    r = simsub.add_parser("run-vector", help="run one golden-vector directory and compare it with its golden files; "
                                             f"exit 0 ran and matched, 1 refused, 2 bad directory, {EXIT_MISMATCH} "
                                             "differs from the golden files")
    r.add_argument("dir", help="vector directory (meta.json + mem_in.bin; mem_out.bin, stats.json, expect.json "
                               "are compared when present)")
    r.add_argument("--out", help="write the final memory image to this file")
    r.add_argument("--json", action="store_true", help="print one JSON object with status, error class, counters, "
                                                       "timing, the golden files checked")
    r.add_argument("--timing-only", action="store_true", help="model the Pynq-Z1 timing without executing (no checks "
                                                              "beyond decoding and deadlock)")
    r.add_argument("--fidelity", choices=("reference", "pynq"), default="reference",
                   help="pynq: also report every construct the Pynq bitstream executes differently")
    r.add_argument("--hw-exec", action="store_true", help="with --fidelity pynq: execute as the bitstream does and "
                                                          "report how the image differs from the reference's")
    r.set_defaults(func=_run_vector)
    t = simsub.add_parser("trace", help="modeled Pynq-Z1 timeline of a vector's program (no execution)")
    t.add_argument("dir", help="vector directory")
    t.add_argument("--json", help="write a Chrome/Perfetto trace to this file")
    t.add_argument("--png", help="write a Gantt chart to this .png file (needs matplotlib)")
    t.set_defaults(func=_trace)
