"""Measurements per second of the device fleet with 1 and 2 simulator workers, and the scaling ratio
(target: >= 1.7x on a 2-core machine).

Each measurement is a compiled 3x3 convolution (14x14, 64 -> 64 channels) run ``--repeats`` times on
a worker's simulator, outputs and modeled cycles returned; the programs execute (they are not
timing-only). Each fleet is a local TLS cluster (``Fleet.local``) warmed up with one job per
worker before the clock starts. Prints a table and writes ``benchmarks/results/fleet.json``.

    python benchmarks/fleet.py [--jobs 24] [--repeats 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from vta.compiler import reference
from vta.compiler.build import build
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, Epilogue, conv2d
from vta.runtime.fleet import Fleet, Job

TARGET_RATIO = 1.7


def conv_job_parts() -> tuple:
    """(program, inputs, expected output) of one conv tile workload."""
    wl = Conv2dWorkload("conv", 14, 14, 64, 64, 3, 1, 1)
    cfg = Conv2dConfig(tile_h=[1, 14], tile_w=[1, 14], tile_ci=[2, 2], tile_co=[2, 2], oc_nthread=2, h_nthread=1)
    op = conv2d(wl, cfg, Epilogue(shift=4, relu=True, clip=(0, 127)))
    a, kern = op.random_inputs(np.random.default_rng(0))
    want = np.clip(reference.conv2d(a, kern, (1, 1), (1, 1)).astype(np.int64) >> 4, 0, 127).astype(np.int8)
    return build(op.schedule, op.args, "conv"), (a, kern), want


def rate(workers: int, jobs: int, repeats: int) -> float:
    prog, inputs, want = conv_job_parts()
    with Fleet.local(workers, "sim") as fleet:
        fleet.measure([Job(f"warm-{i}", prog, inputs, want.shape) for i in range(workers)])
        start = time.perf_counter()
        results = fleet.measure([Job(str(i), prog, inputs, want.shape, repeats=repeats) for i in range(jobs)])
        elapsed = time.perf_counter() - start
    if not all(np.array_equal(r.output, want) for r in results):
        raise SystemExit("a fleet measurement returned a wrong output")
    return jobs / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fleet.json"))
    args = parser.parse_args()
    one, two = rate(1, args.jobs, args.repeats), rate(2, args.jobs, args.repeats)
    ratio = two / one
    r = {"workload": "conv3x3 14x14 64->64, executed on the simulator", "jobs": args.jobs, "repeats": args.repeats,
         "measurements_per_s_1_worker": one, "measurements_per_s_2_workers": two, "scaling_ratio": ratio,
         "target_ratio": TARGET_RATIO, "meets_target": ratio >= TARGET_RATIO, "cpus": os.cpu_count(),
         "python": platform.python_version(), "machine": platform.machine()}
    print(f"{'workers':>7s} {'measurements/s':>15s}")
    print(f"{1:7d} {one:15.2f}\n{2:7d} {two:15.2f}")
    print(f"scaling {ratio:.2f}x (target >= {TARGET_RATIO}x): {'ok' if r['meets_target'] else 'MISSED'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=1) + "\n")
    return 0 if r["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
