"""``vta tune``: tune layers or a file of workloads, write AutoTVM lines, show the best-so-far as it goes.

Tasks come from ResNet-18 layer names (``--layers C2,C8``) or a JSON-lines file (``--tasks``)
in the format of ``shared/calibration`` (``task``, ``target``, ``workload``; knobs ignored) or
AutoTVM's own lines. Every measurement is appended to ``--log`` as an AutoTVM record, so
``apply_best`` (and TVM) can use the result. Times from the model or the simulator are
modeled Pynq-Z1 times; ``--measurer board`` measures on this machine's board and ``--measurer rpc
--host URL`` on a board behind ``vta rpc serve`` (the server's device time, without the network).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from vta.compiler.autotvm import is_record, numbered_lines
from vta.compiler.tune.autotvm_log import Record, make_record, parse_record, task_of, write_log
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.measure import MEASURERS, Measurer, create_measurer
from vta.compiler.tune.task import Task, layer_tasks
from vta.compiler.tune.tuner import STRATEGIES, TransferData, Tuner, TuneResult
from vta.config import Environment, get_env

__all__ = ["read_tasks", "run", "write_curve_png"]

log = logging.getLogger(__name__)


def _digest_record(obj: dict) -> Record:
    """A calibration-format line as the AutoTVM record of the same task (its knobs are not used)."""
    try:
        task, target, wl = obj["task"], obj["target"], obj["workload"]
        data, kernel = wl["data_shape"], wl["kernel_shape"]
    except (KeyError, TypeError) as e:
        raise TuneError(f"a workload line needs task, target and workload (data_shape, kernel_shape); missing {e}") \
            from e
    if task == "dense_packed.vta":
        args = [["TENSOR", data, "int8"], ["TENSOR", kernel, "int8"], None, "int32"]
    else:
        args = [["TENSOR", data, "int8"], ["TENSOR", kernel, "int8"], wl.get("stride", [1, 1]),
                wl.get("pad", [0, 0, 0, 0]), [1, 1], "NCHW", "int32"]
    return Record(f"ext_dev -device=vta -keys=cpu -model={target}", task, args, -1, [], (), 0, 0.0, 0.0)


def read_tasks(path: str | Path) -> list[tuple[Task, Environment]]:
    """The distinct tasks of a workload file; a line that cannot become a task is skipped with a warning."""
    lines = numbered_lines(path, lambda why: TuneError(f"cannot read task file {str(path)!r}: {why}"))
    tasks, seen = [], set()
    for n, text in lines:
        try:
            obj = json.loads(text)
            rec = parse_record(text) if is_record(obj) else _digest_record(obj)
            task, env = task_of(rec)
        except (TuneError, json.JSONDecodeError, TypeError) as e:
            log.warning("%s:%d: skipped: %s", path, n, e)
            continue
        key = (env.BITSTREAM, task.space.task, task.space.workload)
        if key not in seen:
            seen.add(key)
            tasks.append((task, env))
    if not tasks:
        raise TuneError(f"{path}: no line names a task this compiler can tune (conv2d_packed.vta, dense_packed.vta)")
    return tasks


class _Progress:
    """One status line per task, redrawn after each batch: trials done and the best so far."""

    def __init__(self, task: Task, trials: int, kind: str):
        self.task, self.trials, self.kind = task, trials, kind

    def __call__(self, result: TuneResult) -> None:
        done = len(result.trials)
        filled = int(30 * done / self.trials)
        best = result.best_gops_curve()[-1]
        errors = sum(not r.ok for r in result.trials)
        sys.stderr.write(f"\r{self.task.name:>14s} [{'#' * filled}{'.' * (30 - filled)}] {done:4d}/{self.trials} "
                       f"best {best:6.2f} GOPS ({self.kind}){f', {errors} errors' if errors else ''}")
        sys.stderr.flush()


def write_curve_png(curves: dict[str, list[float]], path: str | Path, title: str) -> None:
    """Best GOPS against trials, one line per curve; needs matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise TuneError("the tuning-curve PNG needs matplotlib: pip install \".[plot]\" from the pynq-vta checkout") \
            from e
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=label)
    ax.set_xlabel("trials")
    ax.set_ylabel("best GOPS so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))


def _measurer_options(args: argparse.Namespace) -> dict:
    """The options of ``--measurer``: the board's emulator, the rpc server's URL and credentials, or the fleet's."""
    given = {opt: value for opt, value in (
        ("--emulator", args.emulator), ("--host", args.host), ("--token-file", args.token_file),
        ("--cafile", args.cafile), ("--scheduler", args.scheduler), ("--tls-ca-file", args.tls_ca_file),
        ("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key), ("--execute", args.execute)) if value}
    owners = {"--emulator": "board", "--host": "rpc", "--token-file": "rpc", "--cafile": "rpc"}
    measurer = "board" if args.measurer == "pynq" else args.measurer
    stray = [opt for opt in given if owners.get(opt, "fleet") != measurer]
    if stray:
        raise TuneError(f"{stray[0]} applies to --measurer {owners.get(stray[0], 'fleet')} only, not --measurer "
                        f"{args.measurer}")
    if measurer == "rpc":
        if not args.host:
            raise TuneError("--measurer rpc needs --host URL (tcp+tls://HOST:PORT, ssh://USER@HOST, or tcp:// on "
                            "loopback)")
        return {"url": args.host, "token_file": args.token_file, "cafile": args.cafile}
    if measurer == "fleet":
        return {"execute": args.execute, "scheduler": args.scheduler, "tls_ca_file": args.tls_ca_file,
                "tls_cert": args.tls_cert, "tls_key": args.tls_key, "seed": args.seed}
    return {"emulator": args.emulator} if args.emulator else {}


def _tune_one(task: Task, env: Environment, args: argparse.Namespace, measurer: Measurer, transfer: TransferData,
              out: TextIO) -> TuneResult:
    print(task.space.describe())
    tuner = Tuner(task, measurer, args.cost_model, seed=args.seed, batch=args.batch, transfer=transfer)
    start = time.time()
    result = tuner.run(args.trials, _Progress(task, min(args.trials, len(task.space.valid)), measurer.kind))
    sys.stderr.write("\n")
    per = (time.time() - start) / max(len(result.trials), 1)
    write_log([make_record(task, r.index, r.seconds, r.error, per, start, env) for r in result.trials], out)
    out.flush()
    best = result.best
    if best is None:
        print(f"  no configuration ran: {result.trials[0].error}")
    else:
        print(f"  best {best.seconds * 1e3:.3f} ms {measurer.kind}, {best.gops(task.ops):.2f} GOPS: "
              f"{json.dumps(task.space.values(best.index))}")
    transfer.add(result)
    return result


def run(args: argparse.Namespace) -> int:
    """Tune every task; exit 0 when each has a configuration that ran."""
    if args.trials < 1:
        raise TuneError(f"--trials {args.trials}: expected at least 1")
    for option, value, allowed in (("--measurer", args.measurer, [*MEASURERS, "pynq"]),
                                   ("--cost-model", args.cost_model, list(STRATEGIES))):
        if value not in allowed:
            raise TuneError(f"{option} {value!r}: expected one of {', '.join(allowed)}")
    _measurer_options(args)  # a missing --host or a stray option is an error before any task is read
    if args.tasks:
        tasks = read_tasks(args.tasks)
    else:
        tasks = [(t, get_env()) for t in layer_tasks([n.strip() for n in args.layers.split(",") if n.strip()])]
    # One measurer (a device, a runtime, a fleet's cluster) and one transfer model per configuration,
    # opened once for all of its tasks.
    results: list[TuneResult] = []
    transfers: dict[str, TransferData] = {}
    measurers: dict[str, Measurer] = {}
    try:
        with open(args.log, "a") as out:
            for task, env in tasks:
                with env:
                    if env.BITSTREAM not in measurers:
                        measurers[env.BITSTREAM] = create_measurer(args.measurer, **_measurer_options(args))
                        measurers[env.BITSTREAM].open()
                    transfer = transfers.setdefault(env.BITSTREAM, TransferData())
                    results.append(_tune_one(task, env, args, measurers[env.BITSTREAM], transfer, out))
    finally:
        for measurer in measurers.values():
            measurer.close()
    print(f"{sum(len(r.trials) for r in results)} measurements appended to {args.log}")
    if args.png:
        write_curve_png({f"{r.task.name} ({r.strategy})": r.best_gops_curve() for r in results}, args.png,
                        f"vta tune: best GOPS vs trials ({args.measurer})")
        print(f"tuning curve: {args.png}")
    return 0 if all(r.best is not None for r in results) else 1
