"""Tuned conv2d knobs from an AutoTVM log (TopHub's ``vta_v0.10.log`` format, record versions 0.1 and 0.2).

Lines are read by the one parser of AutoTVM records (:mod:`vta.compiler.autotvm`). Each is one
measured configuration of a ``conv2d_packed.vta`` task: the packed data and kernel shapes,
strides and padding identify the workload, the entities are the template's knobs (``sp``
splits ``[outer, inner]``, ``-1`` standing for "whatever divides", ``ot`` thread counts). For
every workload the configuration with the lowest mean measured cost and no error is kept.
Lines of other tasks are skipped.
"""

from __future__ import annotations

import os
from typing import Any

from vta.compiler.autotvm import RecordError, numbered_lines, parse_record
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


def load_tuning_log(path: str | os.PathLike[str]) -> TuningLog:
    """Read an AutoTVM log (through :mod:`vta.compiler.autotvm`); the best conv2d configuration per workload.

    Raises
    ------
    GraphError
        The file cannot be read, or a line is not an AutoTVM record (naming the line).
    """
    path = os.fspath(path)
    lines = numbered_lines(path, lambda why: GraphError(f"tuning log {path}: cannot read: {why}"))
    best: dict[tuple, tuple[float, dict[str, Any]]] = {}
    for no, line in lines:
        try:
            rec = parse_record(line)
            if rec.task != _TASK or not rec.ok:
                continue
            args = rec.args
            key = _key(args[0][1], args[1][1], args[2], args[3])
            knobs = {name: (list(value) if kind == "sp" else value) for name, kind, value in rec.entity}
        except RecordError as e:
            why = f"{type(e.__cause__).__name__}: {e.__cause__}" if e.__cause__ is not None else str(e)
            raise GraphError(f"tuning log {path}, line {no}: not an AutoTVM record ({why})") from None
        except (KeyError, IndexError, TypeError) as e:
            raise GraphError(f"tuning log {path}, line {no}: not a conv2d_packed.vta record ({type(e).__name__}: "
                             f"{e})") from None
        if key not in best or rec.mean_cost < best[key][0]:
            best[key] = (rec.mean_cost, knobs)
    return TuningLog(path, best)
