"""Tuning-log lines (TVM's AutoTVM logs for VTA, or their JSON-lines digest) as operators of this compiler.

A logged measurement names a template (``conv2d_packed.vta``, ...), packed tensor shapes, the
template's knobs and a VTA target string such as ``pynq_1x16_i8w8a32_15_15_18_17``. This module
turns one such line into the hardware configuration it ran on and the scheduled operator with
exactly those knobs, so the performance model can be compared with what the board measured.
Both formats are accepted: AutoTVM's, both log versions, read by the one parser of AutoTVM
records (:mod:`vta.compiler.autotvm`), and the digest of ``shared/calibration`` (``task`` /
``workload`` / ``knobs`` / ``measured_s``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vta.compiler.autotvm import RecordError, is_record, numbered_lines, record_from_json
from vta.compiler.ops.common import Epilogue, ScheduledOp
from vta.config import Environment, default_config_path, get_env, load_config
from vta.errors import ConfigError, ScheduleError, VTAError

__all__ = ["LoggedLine", "LoggedLineError", "build_line", "model_keys", "parse_line", "program_env", "read_lines",
           "target_env"]

_TARGET = re.compile(r"^(?:\w+_)?(\d+)x(\d+)_i(\d+)w(\d+)a(\d+)_(\d+)_(\d+)_(\d+)_(\d+)$")
# What TVM's VTA tuning script fuses after every template (tune_relay_vta.py: right_shift by 8,
# clip to [0, 127], cast to int8): three ALU stages, so the measured times include them.
TUNING_EPILOGUE = Epilogue(shift=8, clip=(0, 127))


class LoggedLineError(VTAError):
    """A log line that cannot be read or compiled; the message says why."""


@dataclass(frozen=True)
class LoggedLine:
    """One measured (or to-be-predicted) configuration, in the terms of the AutoTVM template."""

    line: int
    task: str
    target: str
    data_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    knobs: dict[str, Any] = field(hash=False)
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    output_padding: tuple[int, int] = (0, 0)
    measured_s: float | None = None
    session: str | None = None
    section: str | None = None
    log_line: int | None = None  # the digest's reference to its line in the published log
    timestamp: float | None = None  # when the board measured it (Unix time)


def model_keys(target: str) -> dict[str, int]:
    """The nine LOG_* configuration keys a VTA target string names (``... -model=pynq_1x16_i8w8a32_15_15_18_17``).

    One parser for every reader of logged targets (``vta model predict``, the tuner's AutoTVM logs).
    """
    model = target.split("-model=")[-1].split()[0] if "-model=" in target else target.strip()
    m = _TARGET.match(model)
    if not m:
        raise ConfigError(f"target {target!r}: expected a VTA model such as pynq_1x16_i8w8a32_15_15_18_17")
    keys = {}
    for key, what, text in zip(("LOG_BATCH", "LOG_BLOCK", "LOG_INP_WIDTH", "LOG_WGT_WIDTH", "LOG_ACC_WIDTH"),
                               ("batch", "block", "input width", "weight width", "accumulator width"), m.groups()):
        n = int(text)
        if n <= 0 or n & (n - 1):
            raise ConfigError(f"target {target!r}: {what} {n} is not a power of two")
        keys[key] = int(math.log2(n))
    sizes = ("LOG_UOP_BUFF_SIZE", "LOG_INP_BUFF_SIZE", "LOG_WGT_BUFF_SIZE", "LOG_ACC_BUFF_SIZE")
    return {**keys, **dict(zip(sizes, map(int, m.groups()[5:])))}


def target_env(target: str) -> Environment:
    """The configuration a logged VTA target names, as the board that measured it ran it.

    The logs were measured on hardware version 0.0.1 bitstreams; the datapath is the same design
    in both versions, so the timing does not depend on it.
    """
    base = get_env()
    model = target.split("-model=")[-1].split()[0] if "-model=" in target else target.strip()
    return base.replace(TARGET="pynq" if model.startswith("pynq") else base.TARGET, HW_VER="0.0.1",
                        **model_keys(target))


def _ints(value: Any, n: int, what: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise LoggedLineError(f"{what}={value!r}: expected {n} integers")
    return tuple(value)


def _from_autotvm(obj: dict, line: int) -> LoggedLine:
    try:
        rec = record_from_json(obj)
    except RecordError as e:
        raise LoggedLineError(f"an AutoTVM line: {e}") from e
    task, args = rec.task, rec.args
    if not isinstance(args, list):
        raise LoggedLineError(f"task {task}: expected a list of template arguments, got {args!r}")
    tensors = [a[1] for a in args if isinstance(a, list) and a and a[0] == "TENSOR"]
    if len(tensors) != 2:
        raise LoggedLineError(f"task {task}: expected two TENSOR arguments (data, kernel), got {len(tensors)}")
    rest = args[2:]
    kw: dict[str, Any] = {}
    if task in ("conv2d_packed.vta", "group_conv2d_packed.vta"):
        kw["strides"], kw["padding"] = _ints(rest[0], 2, "strides"), _ints(rest[1], 4, "padding")
        if task == "group_conv2d_packed.vta":
            kw["groups"] = int(rest[3])
    elif task == "conv2d_transpose_packed.vta":
        kw["strides"], kw["padding"] = _ints(rest[0], 2, "strides"), _ints(rest[1], 4, "padding")
        if len(rest) > 3:
            kw["output_padding"] = _ints(rest[3], 2, "output_padding")
    measured, stamp = (rec.mean_cost, rec.timestamp) if rec.ok else (None, None)
    return LoggedLine(line, task, rec.target, tuple(tensors[0]), tuple(tensors[1]), rec.knobs, measured_s=measured,
                      timestamp=stamp, **kw)


def _from_digest(obj: dict, line: int) -> LoggedLine:
    try:
        task, target, wl, knobs = obj["task"], obj["target"], obj["workload"], obj["knobs"]
        data_shape, kernel_shape = wl["data_shape"], wl["kernel_shape"]
    except (KeyError, TypeError) as e:
        raise LoggedLineError(f"a calibration line needs task, target, workload (data_shape, kernel_shape) and "
                              f"knobs; missing {e}") from e
    kw: dict[str, Any] = {}
    if "stride" in wl:
        kw["strides"] = _ints(wl["stride"], 2, "stride")
    if "pad" in wl:
        kw["padding"] = _ints(wl["pad"], 4, "pad")
    if "groups" in wl:
        kw["groups"] = int(wl["groups"])
    if "output_padding" in wl:
        kw["output_padding"] = _ints(wl["output_padding"], 2, "output_padding")
    measured = obj.get("measured_s")
    if measured is not None and not (isinstance(measured, (int, float)) and measured > 0):
        raise LoggedLineError(f"measured_s={measured!r}: expected a positive number of seconds")
    return LoggedLine(line, str(task), str(target), tuple(data_shape), tuple(kernel_shape), dict(knobs),
                      measured_s=measured, session=obj.get("session"), section=obj.get("section"),
                      log_line=obj.get("line"), timestamp=obj.get("timestamp"), **kw)


def parse_line(text: str, line: int) -> LoggedLine:
    """One JSON line of either format; ``line`` is its 1-based position in the file."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise LoggedLineError(f"not valid JSON: {e.msg} at column {e.colno}") from e
    if not isinstance(obj, dict):
        raise LoggedLineError(f"expected a JSON object, got {type(obj).__name__}")
    return _from_autotvm(obj, line) if is_record(obj) else _from_digest(obj, line)


def read_lines(path: str | Path) -> Iterator[tuple[int, LoggedLine | LoggedLineError]]:
    """(1-based line number, parsed line or the error that line gives) for each line of ``path`` that is not
    blank or a ``#`` comment."""
    for n, raw in numbered_lines(path, lambda why: ConfigError(f"cannot read {str(path)!r}: {why}")):
        try:
            yield n, parse_line(raw, n)
        except LoggedLineError as e:
            yield n, e


def _split(knobs: dict, name: str, extent: int) -> tuple[int, int]:
    """An [outer, inner] knob, with TVM's -1 outer ("whatever is left") resolved against ``extent``."""
    if name not in knobs:
        raise ScheduleError(f"knob {name} is missing")
    v = knobs[name]
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
        raise ScheduleError(f"knob {name}={v!r}: expected [outer, inner]")
    outer, inner = v
    if outer == -1 and inner > 0 and extent % inner == 0:
        outer = extent // inner
    return outer, inner


def _check_shapes(ln: LoggedLine, env: Environment) -> None:
    d, k = ln.data_shape, ln.kernel_shape
    if ln.task == "dense_packed.vta":
        return  # _dense checks its own (4-d) packing
    want_d, want_k = (env.BATCH, env.BLOCK_IN), (env.BLOCK_OUT, env.BLOCK_IN)
    if len(d) != 6 or tuple(d[4:]) != want_d or len(k) != 6 or tuple(k[4:]) != want_k:
        raise ScheduleError(f"data {list(d)} / kernel {list(k)} are not packed for {env.BITSTREAM} "
                            f"(innermost data {list(want_d)}, kernel {list(want_k)})")


def _conv2d(ln: LoggedLine) -> ScheduledOp:
    from vta.compiler.ops.conv2d import conv2d
    from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload

    d, k = ln.data_shape, ln.kernel_shape
    if k[2] != k[3] or len(set(ln.padding)) != 1 or ln.strides[0] != ln.strides[1]:
        raise ScheduleError(f"kernel {k[2]}x{k[3]}, strides {list(ln.strides)}, padding {list(ln.padding)}: the "
                            "conv2d operator takes square kernels with equal strides and padding on every side")
    env = get_env()
    wl = Conv2dWorkload(f"line{ln.line}", d[2], d[3], d[1] * env.BLOCK_IN, k[0] * env.BLOCK_OUT, k[2], ln.strides[0],
                        ln.padding[0], d[0] * env.BATCH, ln.groups)
    nb, _, cob = wl.blocks(env)
    if k[1] != wl.reduce_blocks(env):
        raise ScheduleError(f"kernel {list(k)} has {k[1]} input blocks, the data {d[1]} in {ln.groups} group(s)")
    kn = ln.knobs
    cfg = Conv2dConfig(tile_b=_split(kn, "tile_b", nb), tile_h=_split(kn, "tile_h", wl.out_h),
                       tile_w=_split(kn, "tile_w", wl.out_w), tile_ci=_split(kn, "tile_ci", wl.reduce_blocks(env)),
                       tile_co=_split(kn, "tile_co", cob), oc_nthread=kn.get("oc_nthread", 1),
                       h_nthread=kn.get("h_nthread", 1))
    return conv2d(wl, cfg, TUNING_EPILOGUE)


def _dense(ln: LoggedLine) -> ScheduledOp:
    """Dense with the logged knobs in TVM's loop order (the batch rows of a tile outside the reduction)."""
    from vta.compiler.ops.dense import DenseConfig, dense

    env = get_env()
    d, k = ln.data_shape, ln.kernel_shape
    if len(d) != 4 or len(k) != 4 or d[1] != k[1] or d[3] != k[3]:
        raise ScheduleError(f"dense data {list(d)} and kernel {list(k)} must be 4-d (N, K, n, k) and (M, K, m, k) "
                            "with the same input blocking")
    if (d[2], d[3], k[2]) != (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT):
        raise ScheduleError(f"data {list(d)} / kernel {list(k)} are not packed for {env.MODEL}")
    kn = ln.knobs
    cfg = DenseConfig(tile_b=_split(kn, "tile_b", d[0]), tile_co=_split(kn, "tile_co", k[0]),
                      tile_ci=_split(kn, "tile_ci", d[1]), oc_nthread=kn.get("oc_nthread", 1))
    return dense(d[0] * d[2], d[1] * d[3], k[0] * k[2], cfg, TUNING_EPILOGUE, loads_per_batch_row=True)


def program_env(ln: LoggedLine) -> Environment:
    """The configuration the board that measured ``ln`` ran: its target's, with one exception.

    A dense line packed in other blocks than its target's (TVM's 4x8 LSTM line is packed
    (4, 16, 1, 16), 1x16 blocks): TVM's dense template tensorizes those blocks with the target's
    GEMM intrinsic, whose buffers are declared in the target's blocks, so TVM could not build it
    for that target; the program that was measured is the one for the blocks it is packed in,
    on the released Pynq configuration with those blocks (``vta.sim.predict.not_as_logged``).
    """
    env = target_env(ln.target)
    d = ln.data_shape
    if ln.task != "dense_packed.vta" or len(d) != 4 or (d[2], d[3]) == (env.BATCH, env.BLOCK_IN):
        return env
    released = load_config(default_config_path("pynq"))
    if (d[2], d[3]) != (released.BATCH, released.BLOCK_IN):
        raise ConfigError(f"dense data {list(d)} is packed in {d[2]}x{d[3]} blocks, which neither the target "
                          f"{env.MODEL} nor the released configuration {released.MODEL} has")
    return target_env(released.MODEL)


def _conv2d_transpose(ln: LoggedLine) -> ScheduledOp:
    from vta.compiler.ops.conv2d_config import Conv2dConfig
    from vta.compiler.ops.conv2d_transpose import Conv2dTransposeWorkload, conv2d_transpose

    d, k = ln.data_shape, ln.kernel_shape
    if k[2] != k[3] or len(set(ln.padding)) != 1 or ln.strides[0] != ln.strides[1]:
        raise ScheduleError(f"kernel {k[2]}x{k[3]}, strides {list(ln.strides)}, padding {list(ln.padding)}: the "
                            "conv2d_transpose operator takes square kernels with equal strides and padding")
    if any(ln.output_padding):
        raise ScheduleError(f"output_padding={list(ln.output_padding)}: only (0, 0) (as TVM's VTA template)")
    if k[1] != d[1]:
        raise ScheduleError(f"kernel {list(k)} has {k[1]} input blocks, the data {d[1]}")
    env = get_env()
    wl = Conv2dTransposeWorkload(f"line{ln.line}", d[2], d[3], d[1] * env.BLOCK_IN, k[0] * env.BLOCK_OUT, k[2],
                                 ln.strides[0], ln.padding[0], d[0] * env.BATCH)
    kn = ln.knobs
    cfg = Conv2dConfig(tile_b=_split(kn, "tile_b", d[0]), tile_h=_split(kn, "tile_h", wl.out_h),
                       tile_w=_split(kn, "tile_w", wl.out_w), tile_ci=_split(kn, "tile_ci", d[1]),
                       tile_co=_split(kn, "tile_co", k[0]), oc_nthread=kn.get("oc_nthread", 1),
                       h_nthread=kn.get("h_nthread", 1))
    return conv2d_transpose(wl, cfg, TUNING_EPILOGUE)


_BUILDERS = {"conv2d_packed.vta": _conv2d, "group_conv2d_packed.vta": _conv2d, "dense_packed.vta": _dense,
             "conv2d_transpose_packed.vta": _conv2d_transpose}


def build_line(ln: LoggedLine) -> tuple[Environment, ScheduledOp]:
    """The configuration of ``ln.target`` and the operator scheduled with ``ln.knobs`` (call ``build`` under it).

    The epilogue is the one the tuning runs measured (:data:`TUNING_EPILOGUE`).

    Raises
    ------
    LoggedLineError
        Unknown task, a target the compiler cannot configure, or knobs that do not fit the workload
        or the SRAMs (the reason is in the message).
    """
    builder = _BUILDERS.get(ln.task)
    if builder is None:
        known = ", ".join(_BUILDERS)
        raise LoggedLineError(f"task {ln.task!r} is not supported; supported tasks: {known}")
    try:
        env = program_env(ln)
    except ConfigError as e:
        raise LoggedLineError(f"target cannot be configured: {e}") from e
    with env:
        try:
            _check_shapes(ln, env)
            return env, builder(ln)
        except ScheduleError as e:
            raise LoggedLineError(f"{ln.task} does not take these knobs: {e}") from e
