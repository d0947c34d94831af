"""``vta demo``: ResNet-18's convolution layers compiled, run on the simulated VTA, checked against numpy.

Each layer C2-C11 (spec §7.3) is a packed conv2d with a requantize epilogue (shift, relu,
clip to int8) scheduled with its tuned TopHub knobs (or the default tiler), compiled by
``vta.compiler.build`` and run bit-exact on the simulator backend of the runtime. Cycles and
GOPS are the performance model's prediction for the Pynq-Z1 bitstream at 100 MHz, not a
board measurement (docs/perf-model.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass

import numpy as np

from vta.compiler.build import build
from vta.compiler.ops import Epilogue, conv2d, default_conv2d_config
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.runtime import Runtime

__all__ = ["LayerResult", "add_arguments", "run", "run_layer"]

_INT8_PRODUCT_STD = 128 * 128 / 3  # std of the product of two uniform int8 values, about 5461


@dataclass(frozen=True)
class LayerResult:
    """One layer of the demo: what was compiled and run, what it cost, whether it matched numpy."""

    name: str
    shape: str
    config: str
    instructions: int
    dram_bytes: int
    cycles: int
    predicted_ms: float
    gops: float
    compile_s: float
    ok: bool


def _shift_for(in_channels: int, kernel: int) -> int:
    """A requantize shift that keeps random accumulators in int8 range after it (at most 15, spec §3.4)."""
    std = math.sqrt(in_channels * kernel * kernel) * _INT8_PRODUCT_STD
    return max(0, min(15, round(math.log2(std)) - 6))


def run_layer(name: str, tuned: bool = True, seed: int = 0, runtime: Runtime | None = None) -> LayerResult:
    """Compile layer ``name`` (``"C2"``..``"C11"``), run it on the simulator and compare with numpy."""
    wl = RESNET18[name]
    config = TUNED[name] if tuned else default_conv2d_config(wl)
    epilogue = Epilogue(shift=_shift_for(wl.in_channels, wl.kernel), relu=True, clip=(0, 127))
    start = time.perf_counter()
    op = conv2d(wl, config, epilogue)
    prog = build(op.schedule, op.args, name)
    compile_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    inputs = op.random_inputs(rng)
    out = op.empty_output()
    rt = runtime or Runtime("sim")
    try:
        info = prog.run(*inputs, out, runtime=rt)
        timing = rt.last_timing()
    finally:
        if runtime is None:
            rt.close()
    shape = f"{wl.h}x{wl.w} {wl.in_channels}->{wl.out_channels} k{wl.kernel} s{wl.stride}"
    return LayerResult(name, shape, "tuned" if tuned else "default", info.instructions,
                       sum(timing.dram_bytes.values()), timing.cycles, timing.seconds * 1e3, timing.gops, compile_s,
                       bool(np.array_equal(out, op.reference(*inputs))))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The demo's options, for the ``vta demo`` subcommand."""
    ap.add_argument("--default-config", action="store_true", help="use the default tiler instead of tuned knobs")
    ap.add_argument("--layers", default=",".join(RESNET18), help="comma-separated layer names (default: all)")
    ap.add_argument("--json", help="also write the table as JSON to this file")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when every layer matched numpy."""
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    unknown = [n for n in names if n not in RESNET18]
    if unknown:
        print(f"vta demo: error: unknown layer {unknown[0]!r}; layers: {', '.join(RESNET18)}")
        return 2
    print("pynq-vta demo: ResNet-18 conv layers compiled for VTA, run in the simulator, checked against numpy")
    print("(cycles and GOPS: predicted for the Pynq-Z1 bitstream at 100 MHz by the performance model, "
          "not measured on a board)\n")
    print(f"{'layer':5s} {'shape':24s} {'knobs':7s} {'insns':>6s} {'DRAM KiB':>9s} {'cycles':>9s} {'ms':>7s} "
          f"{'GOPS':>6s} {'compile s':>9s}  check")
    rows = []
    for name in names:
        r = run_layer(name, tuned=not args.default_config)
        rows.append(r)
        print(f"{r.name:5s} {r.shape:24s} {r.config:7s} {r.instructions:6d} {r.dram_bytes / 1024:9.1f} "
              f"{r.cycles:9d} {r.predicted_ms:7.3f} {r.gops:6.2f} {r.compile_s:9.3f}  {'ok' if r.ok else 'MISMATCH'}")
    total_ms = sum(r.predicted_ms for r in rows)
    print(f"\n{len(rows)} layers, predicted {total_ms:.2f} ms on the accelerator; "
          f"{sum(r.ok for r in rows)}/{len(rows)} bit-exact against numpy")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=1)
    return 0 if all(r.ok for r in rows) else 1
