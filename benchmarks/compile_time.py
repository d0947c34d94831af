"""Compile time per conv layer of ResNet-18, ResNet-50 and VGG-16: schedule, lowering, code generation.

For each ResNet-18 layer C2-C11 with the tuned knobs and with the default tiler, and for each
distinct conv layer of ResNet-50 and VGG-16 (the shapes of TVM's VTA tuning logs, 224x224
input) with the default tiler: the time to build the scheduled operator (compute, template,
schedule checks), to lower it to the loop nest and to generate the VTA operations, best of
``--repeat`` runs, plus the operation counts. Target: <= 0.5 s per layer in total.

Usage: python benchmarks/compile_time.py [--repeat N] [--json OUT] [--networks NAME ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vta.compiler.codegen import generate
from vta.compiler.lower.pipeline import lower
from vta.compiler.ops import Conv2dWorkload, Epilogue, conv2d, default_conv2d_config
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.config import get_env

TARGET_S = 0.5


def _layers(shapes: list[tuple[int, int, int, int, int]]) -> dict[str, Conv2dWorkload]:
    """(input size, in channels, out channels, kernel, stride) -> workloads padded by kernel // 2."""
    return {f"{h}_{ci}_{co}_k{k}_s{s}": Conv2dWorkload(f"{h}_{ci}_{co}_k{k}_s{s}", h, h, ci, co, k, s, k // 2)
            for h, ci, co, k, s in shapes}


NETWORKS: dict[str, dict[str, Conv2dWorkload]] = {
    "resnet18": RESNET18,
    "resnet50": _layers([(56, 64, 64, 1, 1), (56, 64, 64, 3, 1), (56, 64, 256, 1, 1), (56, 256, 64, 1, 1),
                         (56, 256, 128, 1, 1), (56, 128, 128, 3, 2), (56, 256, 512, 1, 2), (28, 128, 512, 1, 1),
                         (28, 512, 128, 1, 1), (28, 128, 128, 3, 1), (28, 512, 256, 1, 1), (28, 256, 256, 3, 2),
                         (28, 512, 1024, 1, 2), (14, 256, 1024, 1, 1), (14, 1024, 256, 1, 1), (14, 256, 256, 3, 1),
                         (14, 1024, 512, 1, 1), (14, 512, 512, 3, 2), (14, 1024, 2048, 1, 2), (7, 512, 2048, 1, 1),
                         (7, 2048, 512, 1, 1), (7, 512, 512, 3, 1)]),
    "vgg16": _layers([(224, 64, 64, 3, 1), (112, 64, 128, 3, 1), (112, 128, 128, 3, 1), (56, 128, 256, 3, 1),
                      (56, 256, 256, 3, 1), (28, 256, 512, 3, 1), (28, 512, 512, 3, 1), (14, 512, 512, 3, 1)]),
}


def measure(net: str, name: str, tuned: bool, repeat: int) -> dict:
    wl = NETWORKS[net][name]
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
    return {"network": net, "layer": name, "config": "tuned" if tuned else "default", "schedule_s": best[0],
            "lower_s": best[1],
            "codegen_s": best[2], "total_s": sum(best), "operations": len(ops)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "compile_time.json"))
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    args = ap.parse_args()
    rows = [measure(net, name, tuned, args.repeat) for net in args.networks
            for tuned in ((True, False) if net == "resnet18" else (False,)) for name in NETWORKS[net]]
    print(f"{'network':8s} {'layer':18s} {'knobs':7s} {'schedule ms':>11s} {'lower ms':>8s} {'codegen ms':>10s} "
          f"{'total ms':>8s} {'ops':>5s}")
    for r in rows:
        print(f"{r['network']:8s} {r['layer']:18s} {r['config']:7s} {r['schedule_s'] * 1e3:11.1f} "
              f"{r['lower_s'] * 1e3:8.1f} {r['codegen_s'] * 1e3:10.1f} {r['total_s'] * 1e3:8.1f} {r['operations']:5d}")
    worst = max(rows, key=lambda r: r["total_s"])
    over = sum(r["total_s"] > TARGET_S for r in rows)
    print(f"slowest: {worst['network']} {worst['layer']} ({worst['config']}) {worst['total_s']:.3f} s per layer; "
          f"{over} of {len(rows)} layer(s) over the target of {TARGET_S} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"target_s": TARGET_S, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
