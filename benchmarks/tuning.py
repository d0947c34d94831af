"""How close each search gets to the optimum of ResNet-18 C2-C11 in 8, 16, 32 and 64 trials (model as measurer).

1. The optimum: every configuration the validity filter keeps, timed by the performance model
   (``tuning_exhaustive.py``; its JSON is reused when present, the model being deterministic).
2. For 10 seeds, random, grid, tree (XGBoost ranking, warm-started by the tree runs on the
   layers before it in C2..C11 order), tree-cold (the same without transfer) and neural (numpy
   MLP, warm-started likewise) tune each layer for 64 trials; a trial's time is the model's, read
   from the exhaustive results. Reported: median (and worst) over seeds of optimum / best-found.
3. TopHub's published knobs (``resnet18.TUNED``) against the tree's best after 64 trials and
   the optimum, under the same model.

Prints a table, writes benchmarks/results/tuning.json, tuning.png and compiler/graph/resnet18_tuned.log (the
tree's best per layer for seed 0 as AutoTVM lines, for ``apply_best``). Every time here is the
performance model's prediction for the Pynq-Z1 (modeled), not a board measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tuning_exhaustive

from vta.compiler.graph.models import RESNET18_TUNING_LOG
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.compiler.tune.autotvm_log import make_record, write_log
from vta.compiler.tune.measure import ModelMeasurer
from vta.compiler.tune.task import layer_tasks
from vta.compiler.tune.tuner import TransferData, Tuner

RESULTS = Path(__file__).parent / "results"
CHECKPOINTS = (8, 16, 32, 64)
STRATEGIES = {"random": ("random", False), "grid": ("grid", False), "tree": ("xgb", True),
              "tree-cold": ("xgb", False), "neural": ("mlp", True)}
TARGETS = {16: 0.95, 64: 0.99}


def _ratios(trials: list, optimum: float) -> list[float]:
    secs = [r.seconds if r.ok else np.inf for r in trials]
    return [optimum / min(secs[:n]) for n in CHECKPOINTS]


def _run(layers: list[str], seeds: int, exhaustive: dict) -> tuple[dict, dict]:
    tasks = layer_tasks(layers)
    measurer = ModelMeasurer()
    for t in tasks:
        measurer.preload(t, {int(k): v for k, v in exhaustive[t.name]["seconds"].items()})
    optimum = {t.name: min(v for v in exhaustive[t.name]["seconds"].values() if v) for t in tasks}
    ratios: dict = {s: {t.name: [] for t in tasks} for s in STRATEGIES}
    best_tree: dict = {t.name: [] for t in tasks}
    first_tree: dict = {}
    for seed in range(seeds):
        for label, (strategy, transfer) in STRATEGIES.items():
            prior = TransferData() if transfer else None
            for t in tasks:
                result = Tuner(t, measurer, strategy, seed=seed, transfer=prior).run(CHECKPOINTS[-1])
                ratios[label][t.name].append(_ratios(result.trials, optimum[t.name]))
                if prior is not None:
                    prior.add(result)
                if label == "tree":
                    best_tree[t.name].append(result.best.seconds)
                    if seed == 0:
                        first_tree[t.name] = result
        print(f"seed {seed} done", flush=True)
    _write_best_log(first_tree)
    return ratios, best_tree


def _write_best_log(results: dict) -> None:
    """The tree's best configuration per layer (seed 0, 64 trials) as AutoTVM lines, for ``apply_best``."""
    now = time.time()
    with RESNET18_TUNING_LOG.open("w") as out:  # shipped with the package: vta demo compiles ResNet-18 with it
        write_log([make_record(r.task, r.best.index, r.best.seconds, None, 0.0, now) for r in results.values()], out)


def _table(ratios: dict, layers: list[str]) -> list[str]:
    lines = [f"{'layer':5s} {'strategy':9s} " + " ".join(f"{'@' + str(n):>13s}" for n in CHECKPOINTS),
             "      (median over seeds, worst in brackets: optimum / best found)"]
    for name in layers:
        for label in STRATEGIES:
            r = np.array(ratios[label][name])
            cells = " ".join(f"{100 * m:6.1f}% ({100 * w:4.0f})" for m, w in zip(np.median(r, 0), r.min(0)))
            lines.append(f"{name:5s} {label:9s} {cells}")
    return lines


def _png(ratios: dict, layers: list[str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 6), dpi=100)
    FigureCanvasAgg(fig)
    for k, name in enumerate(layers):
        ax = fig.add_subplot(2, 5, k + 1)
        for label in STRATEGIES:
            ax.plot(CHECKPOINTS, 100 * np.median(np.array(ratios[label][name]), 0), marker="o", label=label)
        ax.set_title(name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(CHECKPOINTS, labels=[str(n) for n in CHECKPOINTS])
        ax.set_ylim(20, 102)
        ax.grid(alpha=0.3)
        if k % 5 == 0:
            ax.set_ylabel("% of optimum (median of seeds)")
        if k >= 5:
            ax.set_xlabel("trials")
    fig.axes[0].legend(fontsize=7)
    fig.suptitle("Best found / exhaustive optimum vs trials, ResNet-18 on the Pynq-Z1 performance model (modeled)")
    fig.tight_layout()
    fig.savefig(str(path))


def _tophub(layers: list[str], exhaustive: dict, best_tree: dict) -> list[dict]:
    rows = []
    for t in layer_tasks(layers):
        secs = exhaustive[t.name]["seconds"]
        tophub = secs[str(t.space.index(TUNED[t.name].__dict__))]
        rows.append({"layer": t.name, "tophub_ms": tophub * 1e3,
                     "tree64_median_ms": float(np.median(best_tree[t.name])) * 1e3,
                     "tree64_worst_ms": max(best_tree[t.name]) * 1e3,
                     "optimum_ms": min(v for v in secs.values() if v) * 1e3})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default=",".join(RESNET18), help="comma-separated layers (default C2..C11)")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    layers = args.layers.split(",")
    tuning_exhaustive.main(layers)
    exhaustive = json.loads(tuning_exhaustive.OUT.read_text())
    start = time.perf_counter()
    ratios, best_tree = _run(layers, args.seeds, exhaustive)
    lines = [f"{'layer':5s} {'space':>6s} {'valid':>6s} {'optimum ms':>10s}"]
    lines += [f"{n:5s} {exhaustive[n]['space']:6d} {exhaustive[n]['valid']:6d} "
              f"{min(v for v in exhaustive[n]['seconds'].values() if v) * 1e3:10.3f}" for n in layers]
    lines += ["", *_table(ratios, layers), ""]
    tree = {n: np.median(np.array(ratios["tree"][n]), 0) for n in layers}
    for n_trials, target in TARGETS.items():
        k = CHECKPOINTS.index(n_trials)
        worst = min(tree[n][k] for n in layers)
        lines.append(f"tree @{n_trials}: worst layer median {100 * worst:.1f}% (target >= {100 * target:.0f}%): "
                     f"{'met' if worst >= target else 'NOT met'}")
    beats = [(n, c) for n in layers for k, c in enumerate(CHECKPOINTS)
             if np.median(np.array(ratios["tree"][n]), 0)[k] < np.median(np.array(ratios["random"][n]), 0)[k]]
    lines.append(f"tree below random (median) at: {beats or 'none'}")
    tophub = _tophub(layers, exhaustive, best_tree)
    lines += ["", f"{'layer':5s} {'TopHub ms':>10s} {'tree@64 median':>15s} {'tree@64 worst':>14s} {'optimum':>9s}"]
    lines += [f"{r['layer']:5s} {r['tophub_ms']:10.3f} {r['tree64_median_ms']:15.3f} {r['tree64_worst_ms']:14.3f} "
              f"{r['optimum_ms']:9.3f}" for r in tophub]
    lines.append(f"(all times modeled by vta.sim.perf for the Pynq-Z1; search wall time "
                 f"{time.perf_counter() - start:.0f} s)")
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps({
        "checkpoints": CHECKPOINTS, "seeds": args.seeds, "modeled": True,
        "layers": {n: {"space": exhaustive[n]["space"], "valid": exhaustive[n]["valid"],
                       "optimum_s": min(v for v in exhaustive[n]["seconds"].values() if v),
                       "ratios": {s: ratios[s][n] for s in STRATEGIES}} for n in layers},
        "tophub": tophub}, indent=1))
    _png(ratios, layers, RESULTS / "tuning.png")


if __name__ == "__main__":
    main()
