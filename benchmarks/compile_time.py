"""Compile time per ResNet-18 conv layer: schedule construction, lowering and code generation.

For each layer C2-C11, with the tuned knobs and with the default tiler: the time to build the
scheduled operator (compute, template, schedule checks), to lower it to the loop nest and to
generate the VTA operations, best of ``--repeat`` runs, plus the operation counts. Target:
<= 0.5 s per layer in total.

Usage: python benchmarks/compile_time.py [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vta.compiler.codegen import generate
from vta.compiler.lower.pipeline import lower
from vta.compiler.ops import Epilogue, conv2d, default_conv2d_config
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.config import get_env

TARGET_S = 0.5


def measure(name: str, tuned: bool, repeat: int) -> dict:
    wl = RESNET18[name]
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        config = TUNED[name] if tuned else default_conv2d_config(wl)
        op = conv2d(wl, config, Epilogue(shift=8, relu=True, clip=(0, 127)))
        t1 = time.perf_counter()
        func = lower(op.schedule, op.args, name)
        t2 = time.perf_counter()
        ops = generate(func, get_env())
        t3 = time.perf_counter()
        times = (t1 - t0, t2 - t1, t3 - t2)
        if best is None or sum(times) < sum(best):
            best = times
    return {"layer": name, "config": "tuned" if tuned else "default", "schedule_s": best[0], "lower_s": best[1],
            "codegen_s": best[2], "total_s": sum(best), "operations": len(ops)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "compile_time.json"))
    args = ap.parse_args()
    rows = [measure(name, tuned, args.repeat) for tuned in (True, False) for name in RESNET18]
    print(f"{'layer':5s} {'knobs':7s} {'schedule ms':>11s} {'lower ms':>8s} {'codegen ms':>10s} {'total ms':>8s} "
          f"{'ops':>5s}")
    for r in rows:
        print(f"{r['layer']:5s} {r['config']:7s} {r['schedule_s'] * 1e3:11.1f} {r['lower_s'] * 1e3:8.1f} "
              f"{r['codegen_s'] * 1e3:10.1f} {r['total_s'] * 1e3:8.1f} {r['operations']:5d}")
    worst = max(rows, key=lambda r: r["total_s"])
    print(f"slowest: {worst['layer']} ({worst['config']}) {worst['total_s']:.3f} s per layer (target <= {TARGET_S} s)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"target_s": TARGET_S, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
