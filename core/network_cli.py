"""``vta bench`` (CPU against VTA for a whole network) and ``vta run`` (a user's ONNX model on VTA).

It lives at the package root, not in ``vta.compiler.graph``, so ``vta --help`` registers these
commands without importing the compiler.
"""

from __future__ import annotations

import argparse
import sys

from vta.cli import check_output_path
from vta.errors import VTAError

__all__ = ["MODELS", "load_model", "make_runtime", "register"]

MODELS = ("resnet18", "digits")


def load_array(path: str, what: str):
    """A .npy file as a numpy array; VTAError naming the option if it cannot be read."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise VTAError(f"{what} {path!r}: not a readable .npy array ({e})") from None


def load_model(name: str, calibration: str | None = None):
    """(float graph, calibration batch, one input sample) of a shipped model or an ONNX file."""
    from vta.compiler.graph import models

    if name.endswith(".onnx"):
        from vta.compiler.graph.onnx_import import import_onnx

        if calibration is None:
            raise VTAError(f"--model {name}: an ONNX model needs --calibration CAL.npy (samples on the first axis)")
        cal = load_array(calibration, "--calibration")
        return import_onnx(name), cal, cal[0] if cal.ndim == 4 and len(cal) else cal
    if name == "resnet18":
        return models.resnet18(), models.resnet18_calibration(), models.resnet18_calibration(1, seed=5)[0]
    if name == "digits":
        d = models.digits_data()
        return models.digits_cnn(), d["calib_x"], d["test_x"][0]
    raise VTAError(f"unknown model {name!r}; models: {', '.join(MODELS)} or a file MODEL.onnx")


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
    png_path = None if args.no_png else check_output_path(args.png or f"bench-{args.model}.png", "--png", suffix=".png")
    if png_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise VTAError('the bar chart needs matplotlib: pip install ".[plot]" from the pynq-vta checkout '
                           "(or pass --no-png)") from None
    if args.repeat < 1:
        raise VTAError(f"--repeat {args.repeat}: expected at least 1")
    graph, cal, x = load_model(args.model, args.calibration)
    _progress(f"quantizing {args.model} with {len(cal)} calibration samples")
    qg = quantize(graph, cal)
    with (make_runtime(args.backend, args.emulator) as rt,
          compile_network(qg, rt, tuning_log=args.tuning_log, progress=_progress) as net):
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


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from vta.compiler.graph import compile_network, quantize
    from vta.compiler.graph.onnx_import import import_onnx

    out_path = check_output_path(args.output, "--output")
    cal = load_array(args.calibration, "--calibration")
    x = load_array(args.input, "--input")
    graph = import_onnx(args.model)
    shape = graph.nodes["input"].shape
    if x.ndim != 4 or x.shape[1:] != shape:
        raise VTAError(f"--input {args.input!r}: shape {x.shape}, expected (samples, {', '.join(map(str, shape))})")
    _progress(f"quantizing {args.model} with {len(cal)} calibration samples")
    qg = quantize(graph, cal)
    with (make_runtime(args.backend, args.emulator) as rt,
          compile_network(qg, rt, tuning_log=args.tuning_log, progress=_progress) as net):
        print(net.describe())
        xq = qg.quantize_input(x)
        rows, wall = [], 0.0
        for i in range(len(xq)):
            if i % 10 == 0:
                _progress(f"sample {i + 1} of {len(xq)}")
            start = time.perf_counter()
            res = net.run_quantized(xq[i:i + 1])
            wall += time.perf_counter() - start
            rows.append(qg.dequantize(qg.outputs[0], res[qg.outputs[0]])[0])
        modeled = sum(net.modeled_seconds().values())
    np.save(out_path, np.stack(rows))
    if modeled:
        print(f"{len(rows)} samples: VTA time {modeled * 1e3:.3f} ms per inference (modeled for the Pynq-Z1); "
              f"{wall / len(rows) * 1e3:.1f} ms per inference in the simulator here")
    else:
        print(f"{len(rows)} samples: {wall / len(rows) * 1e3:.3f} ms per inference (measured)")
    print(f"wrote {out_path} ({qg.outputs[0]}, {len(rows)} rows)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="CPU float32 against VTA int8, per layer and for a whole network")
    p.add_argument("--model", default="resnet18", help="resnet18 (default), digits, or MODEL.onnx")
    p.add_argument("--calibration", help="with MODEL.onnx: calibration samples (.npy, samples first)")
    p.add_argument("--backend", default="sim", help="runtime backend: sim (VTA time modeled) or pynq (measured)")
    p.add_argument("--emulator", help="with --backend pynq: the emulated board served at this file")
    p.add_argument("--tuning-log", help="AutoTVM log with tuned conv2d knobs (TopHub format)")
    p.add_argument("--repeat", type=int, default=3, help="best of this many CPU runs (and board runs)")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--png", help="bar chart file (default bench-MODEL.png)")
    p.add_argument("--no-png", action="store_true", help="skip the bar chart")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("run", help="quantize an ONNX model, compile it for VTA and run every sample of an input")
    p.add_argument("model", help="float ONNX model (Conv, BatchNormalization, Relu, Clip, MaxPool, Add, ...)")
    p.add_argument("--calibration", required=True, help="calibration samples (.npy, samples on the first axis)")
    p.add_argument("--input", required=True, help="input samples (.npy, (N, C, H, W) float)")
    p.add_argument("--output", required=True, help="where to write the dequantized outputs (.npy, one row each)")
    p.add_argument("--backend", default="sim", help="runtime backend: sim or pynq")
    p.add_argument("--emulator", help="with --backend pynq: the emulated board served at this file")
    p.add_argument("--tuning-log", help="AutoTVM log with tuned conv2d knobs (TopHub format)")
    p.set_defaults(func=_cmd_run)


