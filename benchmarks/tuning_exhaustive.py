"""Exhaustive model times of every filtered configuration of ResNet-18 C2-C11 (the optimum the tuners chase).

Writes benchmarks/results/tuning_exhaustive.json: per layer, every valid index with its modeled
seconds (or its error). Layers already in the file are kept, so an interrupted run resumes, but
only while the file was made with the same model constants (its "model" entry): a recalibrated
model starts it afresh. ``benchmarks/tuning.py`` reads the file. Times are the performance
model's (modeled, Pynq-Z1, default profile).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vta.compiler.tune.measure import ModelMeasurer
from vta.compiler.tune.task import layer_tasks
from vta.sim.perf import PYNQ_Z1

OUT = Path(__file__).parent / "results" / "tuning_exhaustive.json"
ORDER = ["C9", "C10", "C11", "C6", "C7", "C8", "C3", "C4", "C5", "C2"]


MODEL = repr(PYNQ_Z1)  # the model constants the times depend on


def main(layers: list[str]) -> None:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    if data.get("model") != MODEL:
        data = {"model": MODEL}
    measurer = ModelMeasurer()
    for task in layer_tasks([n for n in layers if n not in data]):
        start = time.perf_counter()
        valid = task.space.require_valid().tolist()
        results = measurer.measure(task, valid)
        data[task.name] = {"space": len(task.space), "valid": len(valid), "ops": task.ops,
                           "seconds": {str(r.index): r.seconds for r in results},
                           "errors": {str(r.index): r.error for r in results if not r.ok},
                           "wall_s": time.perf_counter() - start}
        OUT.write_text(json.dumps(data, indent=0))
        best = min(r.seconds for r in results if r.ok)
        print(f"{task.name}: {len(valid)} configurations in {time.perf_counter() - start:.0f} s, "
              f"{sum(not r.ok for r in results)} errors, optimum {best * 1e3:.3f} ms (modeled)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ORDER)
