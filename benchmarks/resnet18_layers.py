"""ResNet-18 C2-C11 compiled with TopHub's knobs: instructions, DRAM traffic, modeled Pynq-Z1 time, bit-exactness.

Per layer (``vta.compiler.ops.resnet18``): build with the tuned knobs (``TUNED``, TVM's published
TopHub configurations) and time the compile; run on the simulator backend and compare the output
with the numpy reference; time the program with the calibrated performance model (device time,
``--profile``, default ``pynq``). For comparison, under the same model: the same layer with the
default tiler (also run and checked), the program TVM's lowering builds for the tuned schedule
(``build(..., like_tvm=True)``: TVM's virtual-thread order, tokens and GEMM folding) and the
TVM-built stream of the shared conv vector of the same shape, when the vectors are there.

Cycles, milliseconds and GOPS are modeled for the Pynq-Z1 bitstream at 100 MHz, not measured on a
board; compile seconds are measured on this machine. Prints a table, writes
benchmarks/results/resnet18_layers.json.

    python benchmarks/resnet18_layers.py [--layers C2,C8] [--profile pynq] [--vectors DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import platform_info

from vta.compiler.build import build
from vta.compiler.ops import conv2d, default_conv2d_config
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.compiler.tune.task import requant_epilogue
from vta.runtime import Runtime
from vta.sim.perf import PROFILES, HwTiming, estimate
from vta.sim.predict import predict_program
from vta.sim.vector import load_vector

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "conv"


def _shape(wl: Conv2dWorkload) -> str:
    return f"{wl.h}x{wl.w} {wl.in_channels}->{wl.out_channels} k{wl.kernel} s{wl.stride}"


def _compiled(wl: Conv2dWorkload, config: Conv2dConfig, hw: HwTiming, rt: Runtime, seed: int) -> dict:
    """Build ``wl`` with ``config``, run it on the simulator against numpy, and model its time."""
    epilogue = requant_epilogue(wl.in_channels * wl.kernel * wl.kernel)
    start = time.perf_counter()
    op = conv2d(wl, config, epilogue)
    prog = build(op.schedule, op.args, wl.name)
    compile_s = time.perf_counter() - start
    inputs = op.random_inputs(np.random.default_rng(seed))
    out = op.empty_output()
    info = prog.run(*inputs, out, runtime=rt)
    t = predict_program(prog, hw)
    tvm = predict_program(build(op.schedule, op.args, wl.name, like_tvm=True), hw)
    return {"insns": info.instructions, "dram_bytes": sum(t.dram_bytes.values()), "cycles": t.cycles,
            "ms": t.seconds * 1e3, "gops": t.gops, "utilization": t.utilization, "compile_s": compile_s,
            "bit_exact": bool(np.array_equal(out, op.reference(*inputs))),
            "like_tvm_cycles": tvm.cycles, "like_tvm_ms": tvm.seconds * 1e3}


def _vector(wl: Conv2dWorkload, vectors: Path, hw: HwTiming) -> dict | None:
    """The shared TVM-built vector of ``wl``'s shape under the same model, or None if it is not there."""
    path = vectors / f"conv_{wl.h}_{wl.in_channels}_{wl.out_channels}_k{wl.kernel}_s{wl.stride}"
    if not (path / "meta.json").exists():
        return None
    v = load_vector(path)
    t = estimate(v.insn_bytes(), hw=hw)
    return {"vector": path.name, "insns": v.insn_count, "cycles": t.cycles, "ms": t.seconds * 1e3}


def measure(names: list[str], profile: str, vectors: Path) -> list[dict]:
    hw = PROFILES[profile]
    rows = []
    with Runtime("sim") as rt:
        for k, name in enumerate(names):
            wl = RESNET18[name]
            rows.append({"layer": name, "shape": _shape(wl), "ops": wl.ops,
                         "tuned": _compiled(wl, TUNED[name], hw, rt, k),
                         "default": _compiled(wl, default_conv2d_config(wl), hw, rt, k),
                         "tvm_vector": _vector(wl, vectors, hw)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default=",".join(RESNET18), help="comma-separated layers (default C2..C11)")
    ap.add_argument("--profile", default="pynq", choices=list(PROFILES), help="hardware profile of the model")
    ap.add_argument("--vectors", default=str(VECTORS), help="shared conv vectors (TVM-built streams)")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "resnet18_layers.json"))
    args = ap.parse_args()
    names = [n.strip() for n in args.layers.split(",") if n.strip()]
    unknown = [n for n in names if n not in RESNET18]
    if unknown:
        ap.error(f"unknown layer {unknown[0]!r}; layers: {', '.join(RESNET18)}")
    rows = measure(names, args.profile, Path(args.vectors))
    print(f"TopHub knobs; cycles, ms, GOPS modeled for the Pynq-Z1 at 100 MHz (profile {args.profile}, device time)")
    print(f"{'layer':5s} {'shape':22s} {'insns':>5s} {'DRAM KiB':>8s} {'cycles':>9s} {'ms':>6s} {'GOPS':>6s} "
          f"{'compile s':>9s} {'check':>5s} | {'default ms':>10s} {'like_tvm ms':>11s} {'vector ms':>9s} "
          f"{'v insns':>7s}")
    for r in rows:
        t, d, v = r["tuned"], r["default"], r["tvm_vector"]
        print(f"{r['layer']:5s} {r['shape']:22s} {t['insns']:5d} {t['dram_bytes'] / 1024:8.1f} {t['cycles']:9,d} "
              f"{t['ms']:6.3f} {t['gops']:6.2f} {t['compile_s']:9.3f} {'ok' if t['bit_exact'] else 'BAD':>5s} | "
              f"{d['ms']:7.3f} {'ok' if d['bit_exact'] else 'BAD':2s} {t['like_tvm_ms']:11.3f} "
              f"{v['ms'] if v else float('nan'):9.3f} {v['insns'] if v else 0:7d}")
    total = {k: sum(r[k]["ms"] for r in rows) for k in ("tuned", "default")}
    exact = sum(r[k]["bit_exact"] for r in rows for k in ("tuned", "default"))
    print(f"total modeled: tuned {total['tuned']:.2f} ms, default tiler {total['default']:.2f} ms, "
          f"like_tvm {sum(r['tuned']['like_tvm_ms'] for r in rows):.2f} ms; "
          f"{exact}/{2 * len(rows)} programs bit-exact against numpy")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"profile": args.profile, "modeled": True, "rows": rows,
                                           **platform_info()}, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0 if exact == 2 * len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
