"""AutoTVM tuning logs for the tuner: records read and written as AutoTVM writes them, and turned into tasks.

The records themselves (both log versions, every field kept so a line writes back the same) are
:mod:`vta.compiler.autotvm`'s, the one parser of AutoTVM lines; here a malformed line is a
:class:`TuneError`, and the template arguments become a :class:`~vta.compiler.tune.task.Task`
for the two templates this compiler has (``conv2d_packed.vta``, ``dense_packed.vta``), on the
hardware configuration the target names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from vta.compiler.autotvm import (
    COMPILE_ERROR,
    NO_ERROR,
    RUNTIME_ERROR,
    WRONG_ANSWER,
    Record,
    RecordError,
    numbered_lines,
)
from vta.compiler.autotvm import parse_record as _parse
from vta.compiler.ops.conv2d_config import Conv2dWorkload
from vta.compiler.ops.logged import model_keys
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.space import CONV2D_TASK, DENSE_TASK
from vta.compiler.tune.task import Task, conv2d_task, dense_task
from vta.config import Environment, get_env
from vta.errors import ConfigError

__all__ = ["Record", "iter_log", "make_record", "parse_record", "read_log", "target_env", "task_args", "task_of",
           "write_log"]

log = logging.getLogger(__name__)


def parse_record(text: str) -> Record:
    """One log line (AutoTVM log version 0.1 or 0.2); TuneError says what is missing or malformed."""
    try:
        return _parse(text)
    except RecordError as e:
        raise TuneError(str(e)) from e


def read_log(path: str | Path) -> list[Record]:
    """Every well-formed record of a log; a malformed line is skipped with a warning naming it."""
    return [rec for _, rec in iter_log(path)]


def iter_log(path: str | Path) -> Iterator[tuple[int, Record]]:
    """(1-based line number, record) for each well-formed line; blank lines and ``#`` comments are ignored."""
    for n, text in numbered_lines(path, lambda why: TuneError(f"cannot read tuning log {str(path)!r}: {why}")):
        try:
            yield n, parse_record(text)
        except TuneError as e:
            log.warning("%s:%d: skipped a malformed AutoTVM record: %s", path, n, e)


def write_log(records: Iterable[Record], out: TextIO) -> None:
    """Append ``records`` as AutoTVM lines."""
    for rec in records:
        out.write(rec.to_json() + "\n")


def target_env(target: str, base: Environment | None = None) -> Environment:
    """The hardware configuration a target names (``... -model=pynq_1x16_i8w8a32_15_15_18_17``), over ``base``."""
    try:
        keys = model_keys(target)
    except ConfigError as e:
        raise TuneError(str(e)) from None
    return (base or get_env()).replace(**keys)


def _tensor(arg: Any, what: str) -> tuple[int, ...]:
    if not (isinstance(arg, list) and len(arg) == 3 and arg[0] == "TENSOR" and isinstance(arg[1], list)):
        raise TuneError(f"{what}={arg!r}: expected [\"TENSOR\", shape, dtype]")
    return tuple(arg[1])


def _conv2d_workload(args: list, env: Environment) -> Conv2dWorkload:
    data, kernel = _tensor(args[0], "data"), _tensor(args[1], "kernel")
    strides, padding = args[2], args[3]
    if len(data) != 6 or len(kernel) != 6 or data[4:] != (env.BATCH, env.BLOCK_IN):
        raise TuneError(f"conv2d data {list(data)}: expected the packed layout NCHW{env.BATCH}n{env.BLOCK_IN}c of "
                        f"{env.BITSTREAM}")
    if len(set(strides)) != 1 or len(set(padding)) != 1 or kernel[2] != kernel[3]:
        raise TuneError(f"conv2d strides {strides} / padding {padding} / kernel {kernel[2]}x{kernel[3]}: only equal "
                        "strides, equal padding on every side and square kernels are supported")
    name = f"conv2d_{data[2]}x{data[3]}_{data[1] * data[5]}_{kernel[0] * kernel[4]}_k{kernel[2]}_s{strides[0]}"
    return Conv2dWorkload(name, data[2], data[3], data[1] * data[5], kernel[0] * kernel[4], kernel[2], strides[0],
                          padding[0], data[0] * data[4])


def task_of(record: Record) -> tuple[Task, Environment]:
    """The task a record names and the configuration it ran on (use the task inside ``with env:``)."""
    env = target_env(record.target)
    args = record.args
    with env:
        if record.task == CONV2D_TASK:
            return conv2d_task(_conv2d_workload(args, env)), env
        if record.task == DENSE_TASK:
            data, weight = _tensor(args[0], "data"), _tensor(args[1], "weight")
            if len(data) != 4 or data[2:] != (env.BATCH, env.BLOCK_IN) or weight[2:] != (env.BLOCK_OUT, env.BLOCK_IN):
                raise TuneError(f"dense data {list(data)} / weight {list(weight)}: expected the packed layout of "
                                f"{env.BITSTREAM} (innermost ({env.BATCH}, {env.BLOCK_IN}))")
            return dense_task(f"dense_{data[0] * data[2]}x{data[1] * data[3]}_{weight[0] * weight[2]}", data[0],
                              weight[0], data[1]), env
    raise TuneError(f"template {record.task!r} is not supported by this compiler; supported: {CONV2D_TASK}, "
                    f"{DENSE_TASK}")


def task_args(task: Task, env: Environment) -> list:
    """The serialized template arguments AutoTVM records for ``task``."""
    wl = task.space.workload
    if task.space.task == CONV2D_TASK:
        data, kernel = wl.data_shape, wl.kernel_shape  # type: ignore[union-attr]
        return [["TENSOR", list(data), "int8"], ["TENSOR", list(kernel), "int8"], [wl.stride, wl.stride],  # type: ignore[union-attr]
                [wl.pad] * 4, [1, 1], f"NCHW{env.BATCH}n{env.BLOCK_IN}c", "int32"]  # type: ignore[union-attr]
    nb, mb, kb = wl.blocks  # type: ignore[union-attr]
    return [["TENSOR", [nb, kb, env.BATCH, env.BLOCK_IN], "int8"],
            ["TENSOR", [mb, kb, env.BLOCK_OUT, env.BLOCK_IN], "int8"], None, "int32"]


def make_record(task: Task, index: int, seconds: float | None, error: str | None, all_cost: float,
                timestamp: float, env: Environment | None = None) -> Record:
    """A record of one measurement of ``task`` (an error gets AutoTVM's error code and no cost)."""
    env = env or get_env()
    values = task.space.values(index)
    entity = [[k.name, k.kind, list(values[k.name]) if k.kind == "sp" else values[k.name]] for k in task.space.knobs]
    if error is None:
        costs, code = (float(seconds),), NO_ERROR  # type: ignore[arg-type]
    else:
        costs, code = (), (COMPILE_ERROR if error.startswith("compile") else
                           WRONG_ANSWER if "wrong output" in error else RUNTIME_ERROR)
    target = f"ext_dev -device=vta -keys=cpu -model={env.TARGET}_{env.BITSTREAM}"
    return Record(target, task.space.task, task_args(task, env), index, entity, costs, code, float(all_cost),
                  float(timestamp))
