"""Search spaces of the VTA templates, indexed as AutoTVM indexes them, with a static validity filter.

A space is the product of its knobs in TVM's definition order: a split knob over a loop of
extent ``n`` takes every ``[n // f, f]`` for the divisors ``f`` of ``n`` in increasing order
(AutoTVM's ``factors`` policy), a thread knob takes 1 or 2. AutoTVM numbers a configuration by
mixed radix with the first knob varying fastest, so ``index`` here equals the ``config.index``
of its logs. The filter (:mod:`vta.compiler.tune.validity`) keeps only configurations that
compile, so no trial is spent on one that cannot run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vta.compiler.ops.common import divisors
from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.compiler.ops.dense import DenseConfig
from vta.compiler.tune.errors import TuneError

__all__ = ["CONV2D_TASK", "DENSE_TASK", "Conv2dSpace", "DenseSpace", "DenseWorkload", "Knob", "Space"]

CONV2D_TASK = "conv2d_packed.vta"
DENSE_TASK = "dense_packed.vta"


@dataclass(frozen=True)
class Knob:
    """One knob: its AutoTVM name, kind (``sp`` split or ``ot`` other option) and its options in order."""

    name: str
    kind: str
    options: tuple

    def position(self, value: object) -> int:
        """Where ``value`` is among the options; a split given as ``[-1, inner]`` matches by its inner size."""
        if self.kind == "sp":
            inner = value[1] if isinstance(value, (list, tuple)) and len(value) == 2 else None
            for k, (o, i) in enumerate(self.options):
                if i == inner and value[0] in (o, -1):  # type: ignore[index]
                    return k
        elif value in self.options:
            return self.options.index(value)
        raise TuneError(f"knob {self.name}={value!r} is not in its space: options {list(self.options)}")


def _split(name: str, n: int) -> Knob:
    return Knob(name, "sp", tuple((n // f, f) for f in divisors(n)))


@dataclass(frozen=True)
class DenseWorkload:
    """A packed dense layer in blocks: (batch, output-channel, input-channel) block counts."""

    name: str
    batch_blocks: int
    out_blocks: int
    in_blocks: int

    @property
    def blocks(self) -> tuple[int, int, int]:
        return self.batch_blocks, self.out_blocks, self.in_blocks


class Space:
    """A template's knob space: index <-> knob values <-> operator configuration, and the filter."""

    task: str
    knobs: tuple[Knob, ...]
    workload: Conv2dWorkload | DenseWorkload

    def __len__(self) -> int:
        return int(np.prod([len(k.options) for k in self.knobs]))

    @property
    def name(self) -> str:
        return self.workload.name

    def values(self, index: int) -> dict[str, object]:
        """Knob values of configuration ``index`` (AutoTVM order: the first knob varies fastest)."""
        if not 0 <= index < len(self):
            raise TuneError(f"{self.name}: configuration index {index} outside the space of {len(self)}")
        out = {}
        for knob in self.knobs:
            index, k = divmod(index, len(knob.options))
            out[knob.name] = knob.options[k]
        return out

    def index(self, values: dict[str, object]) -> int:
        """The AutoTVM index of knob ``values`` (every knob of the space must be given)."""
        missing = [k.name for k in self.knobs if k.name not in values]
        if missing:
            raise TuneError(f"{self.name}: knob(s) {', '.join(missing)} missing from {values!r}")
        index, radix = 0, 1
        for knob in self.knobs:
            index += knob.position(values[knob.name]) * radix
            radix *= len(knob.options)
        return index

    def config(self, index: int) -> Conv2dConfig | DenseConfig:
        """The operator configuration of ``index``."""
        raise NotImplementedError

    def reason(self, index: int) -> str | None:
        """Why configuration ``index`` cannot compile, or None when the filter keeps it."""
        raise NotImplementedError

    @cached_property
    def valid(self) -> np.ndarray:
        """Indices of every configuration the static filter keeps, increasing."""
        return np.array([i for i in range(len(self)) if self.reason(i) is None], dtype=np.int64)

    def require_valid(self) -> np.ndarray:
        """:attr:`valid`, or TuneError when the filter leaves nothing."""
        if not len(self.valid):
            raise TuneError(f"{self.name}: none of the {len(self)} configurations of {self.task} fits the hardware "
                            f"(first reason: {self.reason(0)})")
        return self.valid

    def describe(self) -> str:
        """Space size before and after the filter, for the user."""
        return (f"{self.name} ({self.task}): {len(self)} configurations, {len(self.valid)} pass the validity "
                f"filter ({len(self) - len(self.valid)} rejected)")

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self)))


class Conv2dSpace(Space):
    """The 7 knobs of TVM's VTA conv2d template over one workload, in its definition order."""

    task = CONV2D_TASK

    def __init__(self, workload: Conv2dWorkload):
        self.workload = workload
        nb, cib, cob = workload.blocks()
        self.knobs = (_split("tile_b", nb), _split("tile_h", workload.out_h), _split("tile_w", workload.out_w),
                      _split("tile_ci", cib), _split("tile_co", cob), Knob("oc_nthread", "ot", (1, 2)),
                      Knob("h_nthread", "ot", (1, 2)))

    def config(self, index: int) -> Conv2dConfig:
        return Conv2dConfig(**self.values(index))  # type: ignore[arg-type]

    def reason(self, index: int) -> str | None:
        from vta.compiler.tune.validity import conv2d_reason

        return conv2d_reason(self.workload, self.config(index))


class DenseSpace(Space):
    """The 4 knobs of TVM's VTA dense template (tile_b, tile_ci, tile_co, oc_nthread), in its order."""

    task = DENSE_TASK

    def __init__(self, workload: DenseWorkload):
        self.workload = workload
        nb, mb, kb = workload.blocks
        self.knobs = (_split("tile_b", nb), _split("tile_ci", kb), _split("tile_co", mb),
                      Knob("oc_nthread", "ot", (1, 2)))

    def config(self, index: int) -> DenseConfig:
        return DenseConfig(**self.values(index))  # type: ignore[arg-type]

    def reason(self, index: int) -> str | None:
        from vta.compiler.tune.validity import dense_reason

        return dense_reason(self.workload.blocks, self.config(index), self.workload.name)

