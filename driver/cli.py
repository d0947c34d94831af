"""``vta selftest`` and ``vta emulator serve``: the board path from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

__all__ = ["register"]


def _open_device(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[object, str]:
    """(device, where) for the chosen target: a temporary emulator, a served one, or the board."""
    from vta.driver.device import BoardDevice
    from vta.driver.emulated import EmulatedBoard

    if args.emulate:
        board = stack.enter_context(EmulatedBoard.start())
        return stack.enter_context(BoardDevice.open_emulated(board, timeout_s=args.timeout)), "a temporary emulator"
    if args.emulator:
        board = EmulatedBoard.connect(args.emulator)
        return stack.enter_context(BoardDevice.open_emulated(board, timeout_s=args.timeout)), args.emulator
    dev = stack.enter_context(BoardDevice.open_board(bitstream=args.bitstream, mem_path=args.mem,
                                                     lock_path=args.lock, timeout_s=args.timeout,
                                                     program=not args.skip_program))
    if dev.programmed:
        print(dev.programmed)
    return dev, f"the board ({args.mem})"


def _cmd_selftest(args: argparse.Namespace) -> int:
    from vta.driver.selftest import selftest

    with contextlib.ExitStack() as stack:
        dev, where = _open_device(args, stack)
        results = selftest(dev, repeat=args.repeat, timeout_s=args.timeout)
    if args.json:
        print(json.dumps({"target": where, "results": [r.__dict__ for r in results]}))
    else:
        print(f"selftest on {where}:")
        for r in results:
            print(f"  {'ok  ' if r.ok else 'FAIL'} {r.name:8s} median {r.median_s * 1e3:8.3f} ms  "
                  f"best {r.best_s * 1e3:8.3f} ms  {r.detail}")
    return 0 if all(r.ok for r in results) else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from vta.driver.emulator import serve_file

    log = args.log or str(Path(args.file).with_suffix(".log"))
    def ready() -> None:
        print(f"serving an emulated VTA board in {args.file} (events in {log}); Ctrl-C to stop", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve_file(args.file, log_path=log, on_ready=ready)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from vta.driver.lock import DEFAULT_LOCK_PATH

    p = sub.add_parser("selftest", help="run known programs on the board (or an emulator) and check them")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--emulate", action="store_true", help="start a temporary board emulator and test on it")
    where.add_argument("--emulator", metavar="FILE", help="test on an emulator served with `vta emulator serve FILE`")
    p.add_argument("--bitstream", help="bitstream to program first (default: the cached one for this config)")
    p.add_argument("--skip-program", action="store_true", help="do not program the FPGA before testing")
    p.add_argument("--mem", default="/dev/mem", help="memory device for the register windows (default /dev/mem)")
    p.add_argument("--lock", default=DEFAULT_LOCK_PATH, help=f"device lock file (default {DEFAULT_LOCK_PATH})")
    p.add_argument("--repeat", type=int, default=5, help="runs per program for the timings (default 5)")
    p.add_argument("--timeout", type=float, default=2.0, help="wall-clock deadline per run in seconds (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_selftest)
    e = sub.add_parser("emulator", help="register-level Pynq board emulator")
    esub = e.add_subparsers(dest="emulator_command", required=True, metavar="EMULATOR_COMMAND")
    s = esub.add_parser("serve", help="serve an emulated board in FILE until interrupted")
    s.add_argument("file", help="emulator file (a sparse 4 GiB file: byte offset = physical address)")
    s.add_argument("--log", help="append protocol deviations, faults and resets here (default: FILE with .log)")
    s.set_defaults(func=_cmd_serve)
