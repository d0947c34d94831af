"""``vta demo``: whole networks on the simulated VTA, checked bit for bit against the int8 CPU reference.

Two networks, nothing downloaded: the small CNN trained on the handwritten digits (accuracy of
the float model, of the int8 CPU reference and of the VTA run on the 360 held-out images), and
ResNet-18 at 224x224 with seeded weights (one inference, every tensor compared, and the
per-layer CPU float32 against VTA table). VTA times are the performance model's prediction for
the Pynq-Z1 at 100 MHz ("modeled"), not a board measurement; CPU times are measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TextIO

import numpy as np

from vta.errors import VTAError

__all__ = ["DigitsResult", "add_arguments", "run", "run_digits", "run_resnet18"]

MODELS = ("digits", "resnet18")


@dataclass(frozen=True)
class DigitsResult:
    """Accuracies on the held-out split; ``vta_equals_int8`` is the bit-exact check of every label and logit."""

    samples: int
    float_accuracy: float
    int8_accuracy: float
    vta_accuracy: float
    vta_equals_int8: bool
    modeled_ms: float


class _Progress:
    """One line per step on stderr, with the elapsed time, so long steps are never silent."""

    def __init__(self, out: TextIO):
        self.out, self.start = out, time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.start:5.1f}s] {msg}", file=self.out, flush=True)


def run_digits(progress: _Progress) -> DigitsResult:
    """Quantize, compile and run the digits CNN over the held-out split."""
    from vta.compiler.graph import compile_network, quantize
    from vta.compiler.graph.models import digits_cnn, digits_data
    from vta.compiler.graph.train_digits import predict

    d = digits_data()
    x, y = d["test_x"], d["test_y"]
    progress(f"digits: quantizing with {len(d['calib_x'])} calibration images")
    qg = quantize(digits_cnn(), d["calib_x"])
    ref = qg.reference(x)
    with compile_network(qg, "sim", progress=lambda m: progress(f"digits: {m}")) as net:
        progress(f"digits: {len(x)} inferences on the simulator")
        got = net(x)
        modeled = sum(net.modeled_seconds().values())
    same = bool(np.array_equal(got["label"], ref["label"]) and
                np.array_equal(got["fc"], qg.dequantize("fc", ref["fc"])))
    return DigitsResult(len(y), float((predict(d, x) == y).mean()), float((ref["label"] == y).mean()),
                        float((got["label"] == y).mean()), same, modeled * 1e3)


def run_resnet18(progress: _Progress):
    """Quantize, compile and run ResNet-18 once; the bench result (per-layer CPU vs modeled VTA, bit-exact flag)."""
    from vta.compiler.graph import compile_network, quantize
    from vta.compiler.graph.bench import bench
    from vta.compiler.graph.models import RESNET18_TUNING_LOG, resnet18, resnet18_calibration

    graph = resnet18()
    cal = resnet18_calibration()
    progress(f"resnet18: quantizing with {len(cal)} calibration images (224x224)")
    qg = quantize(graph, cal)
    progress(f"resnet18: conv knobs from our tuner ({RESNET18_TUNING_LOG.name}), the default tiler elsewhere")
    with compile_network(qg, "sim", tuning_log=str(RESNET18_TUNING_LOG),
                         progress=lambda m: progress(f"resnet18: {m}")) as net:
        progress("resnet18: one inference on the simulator, then the float32 CPU timing")
        return bench(graph, qg, net, resnet18_calibration(1, seed=5)[0], repeat=3)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The demo's options, for the ``vta demo`` subcommand."""
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: digits, resnet18 (default both)")
    ap.add_argument("--json", help="also write the results as JSON to this file")


def _models(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise VTAError(f"--models {text!r} names no model; models: {', '.join(MODELS)}")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise VTAError(f"--models: unknown model {unknown[0]!r}; models: {', '.join(MODELS)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when every VTA run matched the int8 CPU reference bit for bit."""
    from vta.cli import check_output_path

    names = _models(args.models)
    json_path = check_output_path(args.json, "--json") if args.json else None
    progress = _Progress(sys.stderr)
    report: dict = {}
    ok = True
    print("pynq-vta demo: whole networks quantized to int8, compiled for VTA, run in the simulator and checked "
          "bit for bit against the int8 CPU reference")
    if "digits" in names:
        r = run_digits(progress)
        ok &= r.vta_equals_int8
        report["digits"] = asdict(r)
        print(f"\ndigits CNN (trained on scikit-learn's handwritten digits), {r.samples} held-out images:\n"
              f"  float accuracy {100 * r.float_accuracy:.2f} %, int8 CPU {100 * r.int8_accuracy:.2f} %, "
              f"VTA {100 * r.vta_accuracy:.2f} % — VTA {'equals' if r.vta_equals_int8 else 'DIFFERS FROM'} the "
              f"int8 CPU reference ({r.modeled_ms:.3f} ms modeled VTA time per image)")
    if "resnet18" in names:
        b = run_resnet18(progress)
        ok &= b.bit_exact
        report["resnet18"] = b.to_json()
        print("\nResNet-18, 224x224, seeded weights, one inference:\n" + b.table())
    if json_path:
        json_path.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {json_path}")
    return 0 if ok else 1
