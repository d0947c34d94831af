"""The static validity filter: which knob settings can become a VTA program worth measuring.

Rules, each checked without compiling:

* divisibility and thread splits, and SRAM capacity with one copy of every tile per virtual
  thread: the operator's own ``check`` (one source of truth with the compiler, which raises the
  same ScheduleError);
* micro-op limits: a kernel's hardware loops run over the tile, so a tile extent must fit the
  ``iter_out``/``iter_in`` fields of the GEMM instruction (widths from the ISA);
* the accumulator write-after-write rule: the GEMM pipeline runs at one micro-op per cycle with
  no dependence declared on the accumulator, so a kernel must not write an entry again within
  three micro-ops (spec §3.3). A conv tile of 1 or 2 rows (columns) that is not the whole axis,
  or a dense reduction tile over fewer than 3 accumulator entries, leaves code generation no
  legal kernel shape but one instruction per micro-op group with a pipeline drain between them:
  such configurations compile, to thousands of instructions, and are never competitive, so the
  filter rejects them as the default tilers do.
"""

from __future__ import annotations

from functools import lru_cache

from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload
from vta.compiler.ops.dense import DenseConfig
from vta.config import Environment, get_env
from vta.errors import ScheduleError
from vta.isa import get_isa

__all__ = ["conv2d_reason", "dense_reason"]


@lru_cache(maxsize=8)
def _max_loop(env: Environment) -> int:
    gemm = get_isa(env).gemm
    return min((1 << f.width) - 1 for f in gemm.fields if f.name in ("iter_out", "iter_in"))


def _spatial_ok(tile: int, extent: int) -> bool:
    return tile > 2 or tile == extent


def conv2d_reason(wl: Conv2dWorkload, cfg: Conv2dConfig) -> str | None:
    """Why ``cfg`` is rejected for ``wl`` (None: it passes every rule)."""
    try:
        cfg.check(wl)
    except ScheduleError as e:
        return str(e)
    for knob, extent in (("tile_h", wl.out_h), ("tile_w", wl.out_w)):
        tile = getattr(cfg, knob)[1]
        if not _spatial_ok(tile, extent):
            return (f"conv2d {wl.name}: {knob}={list(getattr(cfg, knob))}: a tile of {tile} output "
                    f"{'rows' if knob == 'tile_h' else 'columns'} out of {extent} makes the GEMM rewrite an "
                    "accumulator entry within three micro-ops (needs more than 2, or the whole axis)")
    limit = _max_loop(get_env())
    for knob in ("tile_h", "tile_w", "tile_ci", "tile_co"):
        if getattr(cfg, knob)[1] > limit:
            return f"conv2d {wl.name}: {knob} inner size {getattr(cfg, knob)[1]} exceeds the {limit}-iteration " \
                   "hardware loop of a GEMM instruction"
    return None


def dense_reason(blocks: tuple[int, int, int], cfg: DenseConfig, name: str = "dense") -> str | None:
    """Why ``cfg`` is rejected for (batch, out, in) ``blocks`` (None: it passes every rule)."""
    try:
        cfg.check(blocks, name)
    except ScheduleError as e:
        return str(e)
    b, co, ci = cfg.tile_b[1], cfg.tile_co[1], cfg.tile_ci[1]
    if ci > 1 and b * co <= 2:
        return (f"{name}: tile_ci={list(cfg.tile_ci)} reduces over {ci} blocks into only {b * co} accumulator "
                "entries, so the GEMM rewrites an entry within three micro-ops (needs more than 2)")
    limit = _max_loop(get_env())
    if max(b, co, ci) > limit:
        return f"{name}: a tile extent exceeds the {limit}-iteration hardware loop of a GEMM instruction"
    return None
