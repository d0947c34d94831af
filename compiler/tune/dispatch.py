"""``apply_best``: while active, the operators' default schedules take the best logged configuration.

``conv2d``/``dense`` called without knobs ask :func:`logged_config` first (the default tiler is
the fallback, with a note in the log naming the workload). A workload is matched on its template,
its shapes and the hardware configuration of the record's target (the bitstream, whatever the
TARGET name), and the best record is the one with the lowest mean cost among error-free records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.compiler.ops.dense import DenseConfig
from vta.compiler.tune.autotvm_log import Record, read_log, task_of
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.space import CONV2D_TASK, DENSE_TASK
from vta.config import get_env

__all__ = ["BestConfigs", "apply_best", "logged_config"]

log = logging.getLogger(__name__)


def _conv_key(wl: Conv2dWorkload) -> tuple:
    return (CONV2D_TASK, wl.h, wl.w, wl.in_channels, wl.out_channels, wl.kernel, wl.stride, wl.pad, wl.batch)


def _dense_key(blocks: tuple[int, int, int]) -> tuple:
    return (DENSE_TASK, *blocks)


class BestConfigs:
    """The best error-free record per (bitstream, workload) of some logs."""

    def __init__(self, records: list[Record]):
        self.best: dict[tuple, tuple[float, Conv2dConfig | DenseConfig]] = {}
        self.skipped: list[tuple[Record, str]] = []
        for rec in records:
            if not rec.ok:
                continue
            try:
                self._add(rec)
            except TuneError as e:
                self.skipped.append((rec, str(e)))

    def _add(self, rec: Record) -> None:
        task, env = task_of(rec)
        with env:
            cfg = task.space.config(task.space.index(rec.knobs))
        wl = task.space.workload
        key = (env.BITSTREAM, _conv_key(wl) if isinstance(wl, Conv2dWorkload) else _dense_key(wl.blocks))
        if rec.mean_cost < self.best.get(key, (math.inf, None))[0]:
            self.best[key] = (rec.mean_cost, cfg)

    def lookup(self, key: tuple) -> Conv2dConfig | DenseConfig | None:
        found = self.best.get((get_env().BITSTREAM, key))
        return None if found is None else found[1]

    def __len__(self) -> int:
        return len(self.best)


_ACTIVE: list[BestConfigs] = []


@contextmanager
def apply_best(*logs: str | Path) -> Iterator[BestConfigs]:
    """Within the block, operators built without knobs use the best logged configuration of their workload.

    Examples
    --------
    >>> with apply_best("resnet18.log"):                       # doctest: +SKIP
    ...     op = conv2d(RESNET18["C8"])                         # the log's best knobs for C8
    """
    records = [rec for path in logs for rec in read_log(path)]
    best = BestConfigs(records)
    for rec, why in best.skipped:
        log.warning("apply_best: a %s record for %s is not used: %s", rec.task, rec.target, why)
    _ACTIVE.append(best)
    try:
        yield best
    finally:
        _ACTIVE.remove(best)


def logged_config(workload: Conv2dWorkload | tuple[int, int, int], name: str = "") -> Conv2dConfig | DenseConfig | None:
    """The active logs' best configuration for a conv2d workload or dense (batch, out, in) blocks, else None.

    None when no ``apply_best`` is active; with one active, a miss is noted (the caller falls
    back to its default tiler).
    """
    if not _ACTIVE:
        return None
    key = _conv_key(workload) if isinstance(workload, Conv2dWorkload) else _dense_key(workload)
    for best in reversed(_ACTIVE):
        cfg = best.lookup(key)
        if cfg is not None:
            return cfg
    what = workload.name if isinstance(workload, Conv2dWorkload) else name or f"dense {workload}"
    log.warning("apply_best: no logged configuration for %s on %s; using the default tiler", what,
                get_env().BITSTREAM)
    return None

