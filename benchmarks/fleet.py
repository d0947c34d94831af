"""Measurements per second of the device fleet with 1 and 2 simulator workers (timing-only), and the
scaling ratio (target: >= 1.7x on a 2-core machine).

Each measurement is a timing-only job: a worker times a compiled 3x3 convolution (14x14, 64 -> 64
channels) with the performance model, without executing it (``--execute`` runs it on the worker's
simulator instead, outputs checked against numpy). Both fleets (local TLS clusters, ``Fleet.local``,
one single-threaded worker process per device) are started and warmed up first; then runs of
``--jobs`` jobs alternate between them for ``--reps`` repetitions, so both see the same machine
load, and the ratio is the one of the median rates. CPU seconds per job of the client process (it
also hosts the scheduler) and of the workers show where the time goes; the load average is recorded
because other processes on the machine take cores from the workers. Prints a table and writes
``benchmarks/results/fleet.json``.

    python benchmarks/fleet.py [--jobs 400] [--reps 7] [--execute] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import psutil

from vta.compiler import reference
from vta.compiler.build import build
from vta.compiler.ops import Conv2dConfig, Conv2dWorkload, Epilogue, conv2d
from vta.runtime.fleet import Fleet, Job

TARGET_RATIO = 1.7
WORKERS = (1, 2)


def conv_job_parts() -> tuple:
    """(program, inputs, expected output) of one conv tile workload."""
    wl = Conv2dWorkload("conv", 14, 14, 64, 64, 3, 1, 1)
    cfg = Conv2dConfig(tile_h=[1, 14], tile_w=[1, 14], tile_ci=[2, 2], tile_co=[2, 2], oc_nthread=2, h_nthread=1)
    op = conv2d(wl, cfg, Epilogue(shift=4, relu=True, clip=(0, 127)))
    a, kern = op.random_inputs(np.random.default_rng(0))
    want = np.clip(reference.conv2d(a, kern, (1, 1), (1, 1)).astype(np.int64) >> 4, 0, 127).astype(np.int8)
    return build(op.schedule, op.args, "conv"), (a, kern), want


def _cpu_s(procs: list[psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs)


class Bench:
    """One fleet and the processes whose CPU time a run is charged with."""

    def __init__(self, workers: int, execute: bool):
        self.workers, self.execute = workers, execute
        self.prog, self.inputs, self.want = conv_job_parts()
        self.fleet = Fleet.local(workers, "sim")
        self.procs = [psutil.Process(pid) for pid in self.fleet.client.run(os.getpid).values()]
        self.run(2 * workers, "warm")

    def jobs(self, n: int, tag: str) -> list[Job]:
        if self.execute:
            return [Job(f"{tag}-{i}", self.prog, self.inputs, self.want.shape) for i in range(n)]
        return [Job.timing(f"{tag}-{i}", self.prog) for i in range(n)]

    def run(self, n: int, tag: str) -> dict:
        """Measure ``n`` jobs; the rate and the CPU seconds per job of the client and of the workers."""
        jobs = self.jobs(n, tag)
        me = psutil.Process()
        client0, workers0, start = _cpu_s([me]), _cpu_s(self.procs), time.perf_counter()
        results = self.fleet.measure(jobs)
        elapsed = time.perf_counter() - start
        client1, workers1 = _cpu_s([me]), _cpu_s(self.procs)
        bad = [r.key for r in results if not r.ok or (self.execute and not np.array_equal(r.output, self.want))]
        if bad:
            raise SystemExit(f"fleet measurements {bad[:3]} failed or returned a wrong output")
        return {"workers": self.workers, "per_s": n / elapsed, "client_cpu_ms_per_job": 1e3 * (client1 - client0) / n,
                "worker_cpu_ms_per_job": 1e3 * (workers1 - workers0) / n, "load_1min": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400, help="jobs per run (default 400)")
    parser.add_argument("--reps", type=int, default=7, help="alternating runs per fleet (default 7)")
    parser.add_argument("--execute", action="store_true", help="execute the programs instead of timing them")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fleet.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    benches = {n: Bench(n, args.execute) for n in WORKERS}
    runs = []
    try:
        for rep in range(args.reps):
            for n in (WORKERS if rep % 2 == 0 else WORKERS[::-1]):  # alternate which fleet goes first
                runs.append({"rep": rep, **benches[n].run(args.jobs, f"r{rep}")})
    finally:
        for b in benches.values():
            b.fleet.close()
    median = {n: statistics.median(r["per_s"] for r in runs if r["workers"] == n) for n in WORKERS}
    ratio = median[2] / median[1]
    per_rep = [[r["per_s"] for r in runs if r["rep"] == rep] for rep in range(args.reps)]
    rep_ratios = [(b if runs[2 * k]["workers"] == 1 else a) / (a if runs[2 * k]["workers"] == 1 else b)
                  for k, (a, b) in enumerate(per_rep)]
    print(f"{'rep':>3s} {'workers':>7s} {'measurements/s':>15s} {'client CPU ms/job':>18s} "
          f"{'worker CPU ms/job':>18s} {'load':>5s}")
    for r in runs:
        print(f"{r['rep']:3d} {r['workers']:7d} {r['per_s']:15.1f} {r['client_cpu_ms_per_job']:18.2f} "
              f"{r['worker_cpu_ms_per_job']:18.2f} {r['load_1min']:5.1f}")
    print(f"median: 1 worker {median[1]:.1f}/s, 2 workers {median[2]:.1f}/s; per-repetition ratios "
          f"{min(rep_ratios):.2f}-{max(rep_ratios):.2f}x")
    ok = ratio >= TARGET_RATIO
    print(f"scaling {ratio:.2f}x (ratio of medians, target >= {TARGET_RATIO}x): {'ok' if ok else 'MISSED'}; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    result = {"workload": "conv3x3 14x14 64->64, " + ("executed on the simulator" if args.execute
                                                       else "timing-only (performance model, modeled)"),
              "jobs_per_run": args.jobs, "reps": args.reps, "measurements_per_s_1_worker": median[1],
              "measurements_per_s_2_workers": median[2], "scaling_ratio": ratio, "rep_ratio_min": min(rep_ratios),
              "rep_ratio_max": max(rep_ratios), "target_ratio": TARGET_RATIO, "meets_target": ok,
              "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "runs": runs,
              "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
