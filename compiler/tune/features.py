"""Loop and schedule features of a configuration, computed from the knobs without compiling.

What the cost models learn from: tile extents and loop trip counts, SRAM entries per scope
(absolute and as a share of the buffer, threads included), DRAM bytes per buffer and the number
of DMA rows (each row pays the bus latency on the Pynq bitstream), GEMM micro-ops per kernel
and kernel instructions, arithmetic intensity and the virtual-thread counts. Sizes are log2
so that layers of different shapes share one scale (the transfer between layers needs that).
"""

from __future__ import annotations

import numpy as np

from vta.compiler.ops.conv2d_config import Conv2dConfig, Conv2dWorkload, conv2d_footprint
from vta.compiler.ops.dense import DenseConfig
from vta.compiler.stage import SRAM_DEPTH
from vta.compiler.tune.space import Conv2dSpace, Space
from vta.config import get_env

__all__ = ["FEATURE_NAMES", "features", "space_features"]

FEATURE_NAMES = (
    "tile_b", "tile_h", "tile_w", "tile_ci", "tile_co", "tiles", "ci_steps", "oc_nthread", "h_nthread",
    "inp_entries", "wgt_entries", "acc_entries", "inp_share", "wgt_share", "acc_share",
    "inp_bytes", "wgt_bytes", "out_bytes", "dram_bytes", "inp_rows", "wgt_rows", "out_rows", "dma_rows",
    "uops_per_kernel", "kernels", "macs_per_byte", "bytes_per_load", "compute_per_load",
)


def _log(x: float) -> float:
    return float(np.log2(max(x, 1.0)))


def _row(tile: dict[str, float], entries: dict[str, int], traffic: dict[str, float], rows: dict[str, float],
         uops_per_kernel: float, kernels: float, macs: float, threads: tuple[int, int]) -> list[float]:
    env = get_env()
    depth = {s: getattr(env, a) for s, a in SRAM_DEPTH.items()}
    share = [entries[s] / depth[s] for s in ("local.inp_buffer", "local.wgt_buffer", "local.acc_buffer")]
    total = sum(traffic.values())
    loads = max(kernels, 1.0)
    return [*(_log(tile[k]) for k in ("b", "h", "w", "ci", "co", "tiles", "ci_steps")), *threads,
            *(_log(entries[s]) for s in ("local.inp_buffer", "local.wgt_buffer", "local.acc_buffer")), *share,
            *(_log(traffic[k]) for k in ("inp", "wgt", "out")), _log(total),
            *(_log(rows[k]) for k in ("inp", "wgt", "out")), _log(sum(rows.values())),
            _log(uops_per_kernel), _log(kernels), _log(macs / max(total, 1.0)), _log(total / loads),
            _log(uops_per_kernel / max(sum(rows.values()) / loads, 1.0))]


def _conv2d(wl: Conv2dWorkload, cfg: Conv2dConfig) -> list[float]:
    env = get_env()
    nb, cib, cob = wl.blocks(env)
    b, h, w, ci, co = (cfg.tile_b[1], cfg.tile_h[1], cfg.tile_w[1], cfg.tile_ci[1], cfg.tile_co[1])
    tiles = (nb // b) * (wl.out_h // h) * (wl.out_w // w) * (cob // co)
    steps = cib // ci
    in_rows = min((h - 1) * wl.stride + wl.kernel, wl.h + 2 * wl.pad)
    in_cols = min((w - 1) * wl.stride + wl.kernel, wl.w + 2 * wl.pad)
    traffic = {"inp": tiles * b * in_rows * in_cols * cib * env.INP_ELEM_BYTES,
               "wgt": tiles * co * cib * wl.kernel ** 2 * env.WGT_ELEM_BYTES,
               "out": nb * cob * wl.out_h * wl.out_w * env.OUT_ELEM_BYTES}
    rows = {"inp": tiles * steps * b * ci * in_rows, "wgt": tiles * steps * co,
            "out": nb * cob * wl.out_h * (wl.out_w // w)}
    uops = b * h * w * co * wl.kernel ** 2 * ci
    macs = wl.ops / 2
    return _row({"b": b, "h": h, "w": w, "ci": ci, "co": co, "tiles": tiles, "ci_steps": steps},
                conv2d_footprint(wl, cfg), traffic, rows, uops, tiles * steps, macs, (cfg.oc_nthread, cfg.h_nthread))


def _dense(blocks: tuple[int, int, int], cfg: DenseConfig) -> list[float]:
    env = get_env()
    nb, mb, kb = blocks
    b, co, ci = cfg.tile_b[1], cfg.tile_co[1], cfg.tile_ci[1]
    tiles, steps = (nb // b) * (mb // co), kb // ci
    traffic = {"inp": tiles * b * kb * env.INP_ELEM_BYTES, "wgt": tiles * co * kb * env.WGT_ELEM_BYTES,
               "out": nb * mb * env.OUT_ELEM_BYTES}
    rows = {"inp": tiles * steps * b, "wgt": tiles * steps * co, "out": nb * (mb // co)}
    macs = nb * mb * kb * env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
    return _row({"b": b, "h": 1, "w": 1, "ci": ci, "co": co, "tiles": tiles, "ci_steps": steps}, cfg.footprint(),
                traffic, rows, b * co * ci, tiles * steps, macs, (cfg.oc_nthread, 1))


def features(space: Space, index: int) -> np.ndarray:
    """The feature vector of configuration ``index`` (float64, in FEATURE_NAMES order)."""
    cfg = space.config(index)
    if isinstance(space, Conv2dSpace):
        return np.array(_conv2d(space.workload, cfg), dtype=np.float64)  # type: ignore[arg-type]
    return np.array(_dense(space.workload.blocks, cfg), dtype=np.float64)  # type: ignore[union-attr, arg-type]


def space_features(space: Space, indices: np.ndarray | list[int]) -> np.ndarray:
    """Features of many configurations, one row each."""
    return np.stack([features(space, int(i)) for i in indices]) if len(indices) else \
        np.zeros((0, len(FEATURE_NAMES)))
