"""The ``vta`` command: thin subcommands over package functions.

Each folder contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module, so this file only wires them together. It is also the one place where
errors become messages: every ``VTAError`` and ``OSError`` a subcommand raises is printed as
one line ``vta CMD: error: ...`` with an exit code, never as a traceback.

Nothing heavy is imported to build the parser (``vta --help`` stays fast): subcommands import
the compiler, numpy and the simulator inside their functions, and the demo's options, which
need the compiler's layer table, are only added when ``vta demo`` is what was asked for.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vta.errors import VTAError

__all__ = ["EXIT_BROKEN_PIPE", "build_parser", "check_output_path", "main"]

# Modules that add subcommands; each exposes register(subparsers).
PLUGINS = ("vta.sim.cli", "vta.bitstream.cli", "vta.driver.cli", "vta.compiler.cli", "vta.network_cli",
           "vta.sim.model_cli", "vta.rpc_cli", "vta.tune_cli")
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command stopped by SIGPIPE (128 + 13)


def check_output_path(path: str | os.PathLike[str], what: str, suffix: str | None = None) -> Path:
    """Refuse an output path that cannot be written, before any long work is done.

    The folder must exist and be writable, the path must not be a folder, and when ``suffix``
    is given the file name must end with it (the format is chosen by the name).
    """
    p = Path(path)
    if suffix is not None and p.suffix.lower() != suffix:
        raise VTAError(f"{what} {str(p)!r}: the file name must end in {suffix}")
    parent = p.parent
    if not parent.is_dir():
        raise VTAError(f"{what} {str(p)!r}: the folder {str(parent)!r} does not exist")
    if p.is_dir():
        raise VTAError(f"{what} {str(p)!r} is a folder, not a file")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise VTAError(f"{what} {str(p)!r}: no permission to write there")
    return p


def _cmd_info(args: argparse.Namespace) -> int:
    from vta.config import cache_dir, config_source, get_env, load_config, target_choice

    env = load_config(args.config) if args.config else get_env()
    source = config_source(args.config)
    info = env.derived()
    why = f"from --config {args.config}" if args.config else target_choice().reason
    if args.json:
        print(json.dumps({**info, "TARGET_REASON": why, "config_source": source}, indent=1))
        return 0
    print(f"configuration: {source}")
    print("change it with VTA_CONFIG=/path/to/config.json or VTA_TARGET=sim|pynq (see `Configuration` in the "
          "README)")
    print(f"bitstream cache: {cache_dir()} (VTA_CACHE_PATH)")
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}" + (f"  ({why})" if key == "TARGET" else ""))
    return 0


def _cmd_disasm(args: argparse.Namespace) -> int:
    from vta.disasm import disassemble_path

    for line in disassemble_path(args.path, uops=args.uops, force=args.force):
        print(line)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from vta.demo import run

    return run(args)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command`` given, options of other heavy subcommands are left out."""
    from vta.disasm import MAX_STREAM_BYTES

    parser = argparse.ArgumentParser(prog="vta", description="pynq-vta: VTA accelerator tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("info", help="print the active hardware configuration, where it comes from, derived constants")
    p.add_argument("--config", help="config JSON to show instead of the active one")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("disasm", help="list an instruction stream (raw file or vector directory)")
    p.add_argument("path", help=f"raw .bin instruction file (at most {MAX_STREAM_BYTES >> 20} MiB) or a vector "
                                "directory")
    p.add_argument("--uops", action="store_true", help="also list the micro-ops each GEMM/ALU uses (vector "
                                                       "directories: read from the LOAD UOPs' memory)")
    p.add_argument("--force", action="store_true", help="list a raw file even if it does not look like an "
                                                        "instruction stream (undefined opcodes, no final FINISH)")
    p.set_defaults(func=_cmd_disasm)
    p = sub.add_parser("demo", help="run the demo in the simulator and check it against numpy")
    if command in (None, "demo"):
        from vta.demo import add_arguments

        add_arguments(p)
    p.set_defaults(func=_cmd_demo)
    for name in PLUGINS:
        if _plugin_exists(name):
            importlib.import_module(name).register(sub)
    return parser


def _plugin_exists(name: str) -> bool:
    """Whether a plugin's module file exists, found without importing its package (which may be heavy)."""
    parent, _, leaf = name.rpartition(".")
    spec = importlib.util.find_spec(parent)
    return spec is not None and any((Path(d) / f"{leaf}.py").is_file() for d in spec.submodule_search_locations or ())


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word not starting with '-')."""
    return next((a for a in argv if not a.startswith("-")), None)


def _command_name(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """'vta sim run-vector': the prog of the innermost subcommand that was chosen."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, action.dest, None) if action is not None else None
        if chosen is None:
            return parser.prog
        parser = action.choices[chosen]


def _os_error_text(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename is not None else ""
    return f"{where}{e.strerror or e}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv) or "")
    args = parser.parse_args(argv)
    name = _command_name(parser, args)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`vta disasm X | head`): stop quietly; point stdout at /dev/null so
        # the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except VTAError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except OSError as e:
        print(f"{name}: error: {_os_error_text(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
