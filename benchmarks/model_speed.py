"""Timing-only model speed against functional simulation, and predicted Pynq-Z1 figures, on the conv vectors.

Per vector: the timing-only estimate from the instruction bytes (decode, field checks, event
model; nothing cached between repeats), the functional first run on a fresh device (what a
tuning loop pays per new schedule) and the steady-state replay; instructions per second of the
estimate; the predicted cycles, milliseconds, GOPS and GEMM utilization at 100 MHz.

Usage: python benchmarks/model_speed.py [VECTORS_DIR] [--repeat N] [--json OUT] [--profile NAME]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import best

from vta.sim.device import SimDevice
from vta.sim.perf import PROFILES, estimate
from vta.sim.vector import load_vector

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "conv"
TARGET_SPEEDUP = 10.0


def measure(path: Path, repeat: int, profile: str = "pynq") -> dict:
    v = load_vector(path)
    data = v.insn_bytes()

    def functional() -> SimDevice:
        dev = SimDevice()
        dev.dram.alloc_at(v.phys_base, len(v.mem_in)).data[:] = v.mem_in
        dev.run(v.insn_phys, v.insn_count)
        return dev

    hw = PROFILES[profile]
    model_s = best(lambda: estimate(data, hw=hw), repeat * 4)
    first_s = best(functional, repeat)
    dev = functional()
    steady_s = best(lambda: dev.run(v.insn_phys, v.insn_count), repeat)
    t = estimate(data, hw=hw)
    return {"vector": path.name, "insns": v.insn_count, "model_s": model_s, "first_s": first_s, "steady_s": steady_s,
            "insns_per_s": v.insn_count / model_s, "speedup_vs_first": first_s / model_s,
            "speedup_vs_steady": steady_s / model_s, "cycles": t.cycles, "profile": profile,
            "predicted_ms": t.seconds * 1e3,
            "gops": t.gops, "utilization": t.utilization, "macs": t.macs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "model_speed.json"))
    ap.add_argument("--profile", default="pynq", choices=list(PROFILES), help="hardware profile of the model")
    args = ap.parse_args()
    paths = [p for p in sorted(Path(args.vectors).iterdir()) if (p / "meta.json").exists()]
    measure(paths[0], 1)  # warm-up: imports, caches and the CPU clock settle before anything is timed
    rows = [measure(p, args.repeat, args.profile) for p in paths]
    print(f"predicted (modeled) with profile {args.profile}")
    print(f"{'vector':24s} {'insns':>5s} {'model ms':>8s} {'insn/s':>8s} {'first ms':>8s} {'x first':>7s} "
          f"{'steady ms':>9s} {'x steady':>8s} {'cycles':>8s} {'pred ms':>7s} {'GOPS':>6s} {'util':>5s}")
    for r in rows:
        print(f"{r['vector']:24s} {r['insns']:5d} {r['model_s'] * 1e3:8.3f} {r['insns_per_s']:8.0f} "
              f"{r['first_s'] * 1e3:8.2f} {r['speedup_vs_first']:7.1f} {r['steady_s'] * 1e3:9.2f} "
              f"{r['speedup_vs_steady']:8.1f} {r['cycles']:8d} {r['predicted_ms']:7.3f} {r['gops']:6.2f} "
              f"{r['utilization']:5.1%}")
    worst = min(r["speedup_vs_first"] for r in rows)
    print(f"timing-only vs functional first run: worst {worst:.1f}x (target >= {TARGET_SPEEDUP:g}x)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"target_speedup": TARGET_SPEEDUP, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
