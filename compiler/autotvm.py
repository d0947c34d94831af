"""AutoTVM tuning-log records: the one parser (and writer) of their JSON lines, both log versions.

Every reader of AutoTVM logs goes through :func:`parse_record` — the tuner's logs
(:mod:`vta.compiler.tune.autotvm_log`), ``vta model predict`` (:mod:`vta.compiler.ops.logged`)
and the network compiler's tuned knobs (:mod:`vta.compiler.graph.tuning`) — so a line means the
same to all of them. Two versions are in TopHub's logs, as AutoTVM's ``decode`` reads them:

* 0.2: ``{"input": [target, template, args, kwargs], "config": {"index", "code_hash", "entity"},
  "result": [costs, error_no, all_cost, timestamp], "version": 0.2, "tvm_version": ...}``;
* 0.1: ``{"i": [target, template, args, kwargs, workload, {"i": index, "c": code_hash, "e": entity}],
  "r": [costs, error_no, all_cost, timestamp], "v": 0.1}``.

A record keeps every field as read, so :meth:`Record.to_json` writes the line back in its own
version. Interpreting the template arguments (which workload, which configuration of VTA) is
the caller's business. Blank lines and ``#`` comments are not records (AutoTVM skips them too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vta.errors import VTAError

__all__ = ["COMPILE_ERROR", "NO_ERROR", "RUNTIME_ERROR", "WRONG_ANSWER", "Record", "RecordError", "is_record",
           "numbered_lines", "parse_record", "record_from_json"]

# AutoTVM's MeasureErrorNo: 0 is NO_ERROR; the tuner records compile failures and wrong outputs as these.
NO_ERROR, COMPILE_ERROR, RUNTIME_ERROR, WRONG_ANSWER = 0, 2, 4, 5
_SHAPE = ("expected input = [target, template, args, kwargs], config.entity and result = "
          "[costs, error_no, all_cost, timestamp]")


class RecordError(VTAError, ValueError):
    """A line that is not an AutoTVM record; the message says what is missing or malformed."""


@dataclass(frozen=True)
class Record:
    """One AutoTVM log line: the task, the knob entity, the measured costs (seconds) and error code."""

    target: str
    task: str
    args: list = field(hash=False)
    index: int
    entity: list = field(hash=False)
    costs: tuple[float, ...]
    error_no: int
    all_cost: float
    timestamp: float
    code_hash: Any = None
    version: float = 0.2
    tvm_version: str = "0.7.dev0"
    extra: dict = field(default_factory=dict, hash=False)  # the input's kwargs
    workload: Any = field(default=None, hash=False)  # version 0.1 only: the input's serialized workload

    @property
    def knobs(self) -> dict[str, Any]:
        return {name: value for name, _, value in self.entity}

    @property
    def ok(self) -> bool:
        return self.error_no == NO_ERROR and bool(self.costs)

    @property
    def mean_cost(self) -> float:
        return sum(self.costs) / len(self.costs) if self.ok else math.inf

    def to_json(self) -> str:
        """The line as AutoTVM writes it, in the record's version."""
        result = [list(self.costs), self.error_no, self.all_cost, self.timestamp]
        if self.version == 0.1:
            config = {"i": self.index, "c": self.code_hash, "e": self.entity}
            return json.dumps({"i": [self.target, self.task, self.args, self.extra, self.workload, config],
                               "r": result, "v": self.version})
        return json.dumps({"input": [self.target, self.task, self.args, self.extra],
                           "config": {"index": self.index, "code_hash": self.code_hash, "entity": self.entity},
                           "result": result, "version": self.version, "tvm_version": self.tvm_version})


def parse_record(text: str) -> Record:
    """One log line; RecordError says what is missing or malformed (caused by the JSON or lookup error)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"not valid JSON: {e.msg} at column {e.colno}") from e
    return record_from_json(obj)


def is_record(obj: Any) -> bool:
    """Whether a decoded JSON line is meant as an AutoTVM record (of either version), not another format."""
    return isinstance(obj, dict) and ("input" in obj or "i" in obj)


def record_from_json(obj: Any) -> Record:
    """The record a decoded JSON line holds (version 0.1 or 0.2, told apart by their keys)."""
    try:
        if isinstance(obj, dict) and "i" in obj and "input" not in obj:  # version 0.1
            target, task, args, extra, workload, cfg = obj["i"]
            index, code_hash, entity, result = cfg.get("i", -1), cfg.get("c"), cfg["e"], obj["r"]
            version, tvm_version = obj.get("v", 0.1), "0.7.dev0"
        else:
            cfg, result = obj["config"], obj["result"]
            target, task, args, extra = obj["input"]
            index, code_hash, entity, workload = cfg.get("index", -1), cfg.get("code_hash"), cfg["entity"], None
            version, tvm_version = obj.get("version", 0.2), obj.get("tvm_version", "0.7.dev0")
        costs, error_no, all_cost, timestamp = result
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RecordError(_SHAPE) from e
    if not (isinstance(entity, list) and all(isinstance(x, list) and len(x) == 3 for x in entity)):
        raise RecordError(f"config.entity={entity!r}: expected a list of [name, kind, value]")
    if not (isinstance(costs, list) and all(isinstance(c, (int, float)) for c in costs)):
        raise RecordError(f"result costs={costs!r}: expected a list of seconds")
    try:
        return Record(str(target), str(task), args, int(index), entity, tuple(costs), int(error_no), float(all_cost),
                      float(timestamp), code_hash, version, tvm_version, extra if isinstance(extra, dict) else {},
                      workload)
    except (TypeError, ValueError) as e:
        raise RecordError(f"{_SHAPE}: {e}") from e


def numbered_lines(path: str | Path, cannot_read: Callable[[str], VTAError]) -> list[tuple[int, str]]:
    """(1-based line number, text) of each line of a log that may hold a record: not blank, not a ``#`` comment.

    A file that cannot be read raises ``cannot_read(why)``: each reader names the file its own way.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise cannot_read(getattr(e, "strerror", None) or str(e)) from e
    return [(n, text) for n, text in enumerate(lines, 1) if text.strip() and not text.lstrip().startswith("#")]
