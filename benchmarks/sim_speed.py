"""Functional-simulator speed on the ResNet-18 conv vectors, against the reference and BLAS.

Per vector it measures, in this process: the first run on a fresh device (decode, schedule,
every check, GEMM planning, execution) and the steady-state run (the same program again on the
same device: verified once, so it is replayed without re-checking); the reference's
``ref_inner_wall_s_best`` from timing.json (measured on this kind of machine); and a float32
BLAS matrix product with the layer's MAC count, measured now, so machine noise shows up in both.

Usage: python benchmarks/sim_speed.py [VECTORS_DIR] [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _common import best

from vta.sim.device import SimDevice
from vta.sim.vector import load_vector

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "conv"
TARGET_3X3, TARGET_1X1, TARGET_BLAS = 0.7, 1.0, 8.0


def blas_time(macs: int, repeat: int) -> float:
    n = round(macs ** (1 / 3))
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    return best(lambda: a @ b, repeat) * macs / n**3


def measure(path: Path, repeat: int) -> dict:
    v = load_vector(path)
    timing = json.loads((path / "timing.json").read_text())

    def fresh() -> tuple[SimDevice, object]:
        dev = SimDevice()
        buf = dev.dram.alloc_at(v.phys_base, len(v.mem_in))
        buf.data[:] = v.mem_in
        return dev, buf

    firsts = []
    for _ in range(repeat):
        dev, buf = fresh()
        t = time.perf_counter()
        dev.run(v.insn_phys, v.insn_count)
        firsts.append(time.perf_counter() - t)
    assert np.array_equal(buf.data, v.mem_out), f"{path.name}: wrong result"
    steady = best(lambda: dev.run(v.insn_phys, v.insn_count), repeat * 2)
    ref = timing["ref_inner_wall_s_best"]
    blas = blas_time(timing["macs"], repeat * 2)
    k = v.meta["layer"]["k"]
    return {"vector": path.name, "kernel": k, "insns": v.insn_count, "macs": timing["macs"],
            "first_s": min(firsts), "steady_s": steady, "ref_s": ref, "blas_s": blas,
            "first_over_ref": min(firsts) / ref, "steady_over_ref": steady / ref, "steady_over_blas": steady / blas,
            "target_over_ref": TARGET_3X3 if k == 3 else TARGET_1X1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "sim_speed.json"))
    args = ap.parse_args()
    rows = [measure(p, args.repeat) for p in sorted(Path(args.vectors).iterdir()) if (p / "timing.json").exists()]
    print(f"{'vector':24s} {'first ms':>9s} {'steady ms':>9s} {'ref ms':>7s} {'BLAS ms':>8s} "
          f"{'first/ref':>9s} {'steady/ref':>10s} {'target':>6s} {'steady/BLAS':>11s}")
    for r in rows:
        blas_ok = r["kernel"] == 1 or r["steady_over_blas"] <= TARGET_BLAS
        ok = "ok" if r["steady_over_ref"] <= r["target_over_ref"] and blas_ok else "MISS"
        print(f"{r['vector']:24s} {r['first_s'] * 1e3:9.1f} {r['steady_s'] * 1e3:9.1f} {r['ref_s'] * 1e3:7.1f} "
              f"{r['blas_s'] * 1e3:8.2f} {r['first_over_ref']:9.2f} {r['steady_over_ref']:10.2f} "
              f"{'<=' + str(r['target_over_ref']):>6s} {r['steady_over_blas']:11.1f}  {ok}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                                           "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
