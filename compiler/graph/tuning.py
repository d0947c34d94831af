"""Tuned conv2d knobs from an AutoTVM log (TopHub's ``vta_v0.10.log`` format, record versions 0.1 and 0.2).

Each line is one measured configuration of a ``conv2d_packed.vta`` task: the packed data and
kernel shapes, strides and padding identify the workload, the entities are the template's
knobs (``sp`` splits ``[outer, inner]``, ``-1`` standing for "whatever divides", ``ot`` thread
counts). For every workload the configuration with the lowest mean measured cost and no error
is kept. Lines of other tasks are skipped.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vta.compiler.graph.graph import GraphError
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.errors import ScheduleError

__all__ = ["TuningLog", "load_tuning_log"]

_TASK = "conv2d_packed.vta"
_SPLITS = ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co")


def _key(data: list[int], kernel: list[int], stride: list[int], pad: list[int]) -> tuple:
    return tuple(data), tuple(kernel), tuple(stride), tuple(pad)


class TuningLog:
    """The best logged knobs per conv2d workload; :meth:`config` resolves them for one workload."""

    def __init__(self, path: str, best: dict[tuple, tuple[float, dict[str, Any]]]):
        self.path, self.best = path, best

    def __len__(self) -> int:
        return len(self.best)

    def config(self, wl: Conv2dWorkload) -> Conv2dConfig | None:
        """The tuned configuration of ``wl``, or None when the log has no entry for it.

        Raises
        ------
        GraphError
            The logged knobs do not tile the workload (a log for another configuration of VTA).
        """
        key = _key(list(wl.data_shape), list(wl.kernel_shape), [wl.stride, wl.stride], [wl.pad] * 4)
        if key not in self.best:
            return None
        knobs = dict(self.best[key][1])
        nb, cib, cob = wl.blocks()
        extents = {"tile_b": nb, "tile_h": wl.out_h, "tile_w": wl.out_w, "tile_ci": cib, "tile_co": cob}
        for k in _SPLITS:
            outer, inner = knobs.get(k, [-1, 1])
            knobs[k] = [extents[k] // inner if outer == -1 else outer, inner]
        try:
            cfg = Conv2dConfig(**knobs)
            cfg.check(wl)
        except (ScheduleError, TypeError) as e:
            raise GraphError(f"tuning log {self.path}: the entry for {wl.name} does not fit it: {e}") from None
        return cfg


def _record(line: str) -> tuple[str, list, list, float, bool]:
    rec = json.loads(line)
    if "input" in rec:  # version 0.2
        inp, entities, result = rec["input"], rec["config"]["entity"], rec["result"]
        task, args = inp[1], inp[2]
    else:  # version 0.1: {"i": [target, task, args, kwargs, workload, {"e": entities}], "r": result}
        inp, result = rec["i"], rec["r"]
        task, args, entities = inp[1], inp[2], inp[5]["e"]
    costs, error = result[0], result[1]
    return task, args, entities, sum(costs) / max(len(costs), 1), error == 0


def load_tuning_log(path: str | os.PathLike[str]) -> TuningLog:
    """Read an AutoTVM log; the best conv2d configuration per workload.

    Raises
    ------
    GraphError
        The file cannot be read, or a line is not an AutoTVM record (naming the line).
    """
    path = os.fspath(path)
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError as e:
        raise GraphError(f"tuning log {path}: cannot read: {e.strerror}") from None
    best: dict[tuple, tuple[float, dict[str, Any]]] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            task, args, entities, cost, ok = _record(line)
            if task != _TASK or not ok:
                continue
            key = _key(args[0][1], args[1][1], args[2], args[3])
            knobs = {name: (list(value) if kind == "sp" else value) for name, kind, value in entities}
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise GraphError(f"tuning log {path}, line {no}: not an AutoTVM record ({type(e).__name__}: {e})") from None
        if key not in best or cost < best[key][0]:
            best[key] = (cost, knobs)
    return TuningLog(path, best)
