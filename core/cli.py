"""The ``vta`` command: thin subcommands over package functions.

Each folder contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module, so this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from vta.errors import VTAError

# Modules that add subcommands; each exposes register(subparsers).
PLUGINS = ("vta.sim.cli", "vta.bitstream.cli", "vta.driver.cli", "vta.compiler.cli", "vta.compiler.tune.cli")


def _cmd_info(args: argparse.Namespace) -> int:
    from vta.config import get_env, load_config

    env = load_config(args.config) if args.config else get_env()
    info = env.derived()
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _cmd_disasm(args: argparse.Namespace) -> int:
    from vta.disasm import disassemble_path

    for line in disassemble_path(args.path, uops=args.uops):
        print(line)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from vta.demo import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vta", description="pynq-vta: VTA accelerator tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("info", help="print the active hardware configuration and derived constants")
    p.add_argument("--config", help="config JSON to show instead of the active one")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("disasm", help="list an instruction stream (raw file or vector directory)")
    p.add_argument("path", help="raw .bin instruction file or a vector directory")
    p.add_argument("--uops", action="store_true", help="also list the micro-ops each GEMM/ALU uses")
    p.set_defaults(func=_cmd_disasm)
    p = sub.add_parser("demo", help="run the demo in the simulator and check it against numpy")
    from vta.demo import add_arguments

    add_arguments(p)
    p.set_defaults(func=_cmd_demo)
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VTAError as e:
        print(f"vta {args.command}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)


if __name__ == "__main__":
    sys.exit(main())
