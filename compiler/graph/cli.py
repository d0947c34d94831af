"""``vta bench``: the CPU-versus-VTA measurement of a whole network (see :mod:`vta.compiler.graph.bench`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vta.errors import VTAError

__all__ = ["MODELS", "check_output_path", "load_model", "make_runtime", "register"]

MODELS = ("resnet18", "digits")


def check_output_path(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse, before any work, an output path whose directory is missing or that names a directory."""
    p = Path(path)
    if p.is_dir():
        raise VTAError(f"{what} {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise VTAError(f"{what} {str(p)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise VTAError(f"{what} {str(p)!r}: directory {str(parent)!r} is not writable")
    return p


def load_model(name: str):
    """(float graph, calibration batch, one input sample) of a shipped model."""
    from vta.compiler.graph import models

    if name == "resnet18":
        return models.resnet18(), models.resnet18_calibration(), models.resnet18_calibration(1, seed=5)[0]
    if name == "digits":
        d = models.digits_data()
        return models.digits_cnn(), d["calib_x"], d["test_x"][0]
    raise VTAError(f"unknown model {name!r}; models: {', '.join(MODELS)}")


def make_runtime(backend: str, emulator: str | None):
    """A runtime on ``backend``; ``pynq`` with ``emulator`` is the emulated board served at that file."""
    from vta.runtime import Runtime

    if emulator is None:
        return Runtime(backend)
    if backend != "pynq":
        raise VTAError(f"--emulator serves the pynq backend, not {backend!r}")
    from vta.runtime.backends.board import BoardBackend

    return Runtime(BoardBackend(emulator=emulator, timeout_s=60.0))


def _progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def _cmd_bench(args: argparse.Namespace) -> int:
    from vta.compiler.graph import compile_network, quantize
    from vta.compiler.graph.bench import bench, write_json, write_png

    json_path = check_output_path(args.json, "--json") if args.json else None
    png_path = None if args.no_png else check_output_path(args.png or f"bench-{args.model}.png", "--png")
    if png_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise VTAError('the bar chart needs matplotlib: pip install ".[plot]" from the pynq-vta checkout '
                           "(or pass --no-png)") from None
    if args.repeat < 1:
        raise VTAError(f"--repeat {args.repeat}: expected at least 1")
    graph, cal, x = load_model(args.model)
    _progress(f"quantizing {args.model} with {len(cal)} calibration samples")
    qg = quantize(graph, cal)
    with make_runtime(args.backend, args.emulator) as rt, compile_network(qg, rt, progress=_progress) as net:
        _progress("running")
        result = bench(graph, qg, net, x, repeat=args.repeat)
    print(result.table())
    if json_path:
        write_json(result, json_path)
        print(f"wrote {json_path}")
    if png_path:
        write_png(result, png_path)
        print(f"wrote {png_path}")
    return 0 if result.bit_exact else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="CPU float32 against VTA int8, per layer and for a whole network")
    p.add_argument("--model", default="resnet18", choices=MODELS, help="network to measure (default resnet18)")
    p.add_argument("--backend", default="sim", help="runtime backend: sim (VTA time modeled) or pynq (measured)")
    p.add_argument("--emulator", help="with --backend pynq: the emulated board served at this file")
    p.add_argument("--repeat", type=int, default=3, help="best of this many CPU runs (and board runs)")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--png", help="bar chart file (default bench-MODEL.png)")
    p.add_argument("--no-png", action="store_true", help="skip the bar chart")
    p.set_defaults(func=_cmd_bench)


