"""Whole-network speed: functional-simulator time per ResNet-18 inference against the same run's CPU float32
inference (target: at most 3x), the modeled Pynq-Z1 time split into VTA and CPU-fallback parts, and the
host overhead per inference as a fraction of the modeled VTA time (target: at most 5 %).

Host overhead is everything Python does outside the device and outside the CPU-fallback layers:
quantizing the input, launching the replayed streams, copies between host and device buffers at
VTA/CPU boundaries, layout changes. It is measured with timing passes (``run_quantized(...,
device=False)``), which run every host step of an inference but not the simulator, median of
``--passes``. CPU-fallback time is measured on this machine (the board's Cortex-A9 is slower).
Prints a table and writes ``benchmarks/results/network.json``.

    python benchmarks/network.py [--model resnet18|digits] [--repeat 2] [--passes 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _common import platform_info

from vta.compiler.graph import compile_network, quantize
from vta.compiler.graph.bench import float_layer_times
from vta.network_cli import load_model

SIM_TARGET = 3.0
HOST_TARGET = 0.05


def measure(model: str, repeat: int, passes: int) -> dict:
    graph, cal, x = load_model(model)
    qg = quantize(graph, cal)
    t0 = time.perf_counter()
    with compile_network(qg, "sim") as net:
        compile_s = time.perf_counter() - t0
        xq = qg.quantize_input(x)
        net.run_quantized(xq)  # the first inference captures the streams; the timed ones replay them
        sim_s, device_s, cpu_s = [], [], []
        for _ in range(repeat):
            start = time.perf_counter()
            net.run_quantized(qg.quantize_input(x))
            sim_s.append(time.perf_counter() - start)
            device_s.append(sum(t.device_s for t in net.profile.values()))
        host = []
        for _ in range(passes):
            start = time.perf_counter()
            net.run_quantized(qg.quantize_input(x), device=False)
            wall = time.perf_counter() - start
            fallback = sum(t.cpu_s for t in net.profile.values())
            cpu_s.append(fallback)
            host.append(wall - fallback)
        modeled = sum(net.modeled_seconds().values())
        exact = all(np.array_equal(net.run_quantized(xq)[o], qg.reference(x)[o]) for o in qg.outputs)
        placement = {p: sum(v.target == p for v in net.placement.values()) for p in ("vta", "cpu")}
    _, cpu_float = float_layer_times(graph, x, repeat + 1)
    sim = min(sim_s)
    host_s = statistics.median(host)
    fallback_s = statistics.median(cpu_s)
    return {
        "model": model, "compile_s": compile_s, "bit_exact": exact, "nodes": placement,
        "sim_inference_s": sim, "sim_device_s": min(device_s), "cpu_float32_inference_s": cpu_float,
        "sim_over_cpu": sim / cpu_float, "sim_target": SIM_TARGET, "sim_meets_target": sim / cpu_float <= SIM_TARGET,
        "modeled_vta_s": modeled, "cpu_fallback_s_measured_here": fallback_s,
        "modeled_pynq_inference_s": modeled + fallback_s + host_s,
        "host_overhead_s": host_s, "host_over_modeled_vta": host_s / modeled, "host_target": HOST_TARGET,
        "host_meets_target": host_s / modeled <= HOST_TARGET,
        **platform_info(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18", choices=("resnet18", "digits"))
    ap.add_argument("--repeat", type=int, default=2, help="simulated inferences (best of)")
    ap.add_argument("--passes", type=int, default=20, help="timing passes for the host overhead (median)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "network.json"))
    args = ap.parse_args()
    r = measure(args.model, args.repeat, args.passes)
    ok = {True: "meets", False: "MISSES"}
    print(f"{r['model']}: {r['nodes']['vta']} nodes on VTA, {r['nodes']['cpu']} on the CPU; compile "
          f"{r['compile_s']:.1f} s; bit-exact: {r['bit_exact']}")
    rows = [
        ("functional simulator, per inference (measured)", f"{r['sim_inference_s'] * 1e3:10.1f} ms"),
        ("  of which inside the simulator", f"{r['sim_device_s'] * 1e3:10.1f} ms"),
        ("CPU float32 inference, same run (im2col + BLAS)", f"{r['cpu_float32_inference_s'] * 1e3:10.1f} ms"),
        ("simulator / CPU", f"{r['sim_over_cpu']:10.2f} x  ({ok[r['sim_meets_target']]} <= {SIM_TARGET:g} x)"),
        ("Pynq-Z1 VTA time (modeled)", f"{r['modeled_vta_s'] * 1e3:10.2f} ms"),
        ("CPU-fallback layers (measured here)", f"{r['cpu_fallback_s_measured_here'] * 1e3:10.2f} ms"),
        ("host overhead per inference (measured here)", f"{r['host_overhead_s'] * 1e3:10.2f} ms"),
        ("host overhead / modeled VTA time", f"{100 * r['host_over_modeled_vta']:10.2f} %  "
                                             f"({ok[r['host_meets_target']]} <= {100 * HOST_TARGET:g} %)"),
    ]
    for k, v in rows:
        print(f"{k:50s} {v}")
    Path(args.out).write_text(json.dumps(r, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
