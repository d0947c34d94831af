"""Packed dense (fully connected) on the GEMM core, with the requantize epilogue and a default tiler.

Data is (N/1, K/16, 1, 16) int8, weights (M/16, K/16, 16, 16) int8 output-channel-major
(spec §7.1); the schedule follows TVM's ``schedule_dense_packed``: output tiles of
``tile_b`` x ``tile_co`` blocks in the accumulator, the reduction streamed ``tile_ci`` blocks
at a time, optionally 2 virtual threads over the output-channel tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler import reference, te
from vta.compiler.intrin import gemm_intrin
from vta.compiler.ops.common import (
    Epilogue,
    ScheduledOp,
    check_thread_split,
    divisors,
    schedule_ewise,
    split_knob,
    split_vthread,
    thread_knob,
)
from vta.compiler.schedule import Schedule, create_schedule
from vta.compiler.stage import SRAM_DEPTH
from vta.compiler.te import Tensor
from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["DenseConfig", "DenseTensors", "default_dense_config", "dense", "dense_packed", "schedule_dense_packed"]

_SPLITS = ("tile_b", "tile_co", "tile_ci")


@dataclass(frozen=True, kw_only=True)
class DenseConfig:
    """[outer, inner] splits of the batch, output-channel and input-channel blocks, and threads.

    Examples
    --------
    >>> DenseConfig(tile_b=[1, 1], tile_co=[4, 8], tile_ci=[2, 32], oc_nthread=2).tile_co
    (4, 8)
    """

    tile_b: tuple[int, int]
    tile_co: tuple[int, int]
    tile_ci: tuple[int, int]
    oc_nthread: int = 1

    def __post_init__(self) -> None:
        for knob in _SPLITS:
            object.__setattr__(self, knob, split_knob("DenseConfig", knob, getattr(self, knob)))
        thread_knob("DenseConfig", "oc_nthread", self.oc_nthread)

    def footprint(self) -> dict[str, int]:
        """SRAM entries per scope, one copy per virtual thread."""
        b, co, ci, t = self.tile_b[1], self.tile_co[1], self.tile_ci[1], self.oc_nthread
        return {"local.inp_buffer": b * ci * t, "local.wgt_buffer": co * ci * t, "local.acc_buffer": b * co * t}

    def check(self, blocks: tuple[int, int, int], name: str = "dense") -> None:
        """Raise ScheduleError naming the knob if this does not tile (batch, out, in) ``blocks`` within SRAM."""
        for knob, n, what in zip(_SPLITS, blocks, ("batch blocks", "output-channel blocks", "input-channel blocks")):
            o, i = getattr(self, knob)
            if o * i != n:
                raise ScheduleError(f"{name}: {knob}={[o, i]}: {o} x {i} = {o * i}, expected the {what} {n}")
        check_thread_split(name, "oc_nthread", self.oc_nthread, "tile_co", self.tile_co)
        env = get_env()
        depth = {scope: getattr(env, attr) for scope, attr in SRAM_DEPTH.items()}
        for scope, entries in self.footprint().items():
            if entries > depth[scope]:
                raise ScheduleError(f"{name}: tile_b={list(self.tile_b)}, tile_co={list(self.tile_co)}, tile_ci="
                                    f"{list(self.tile_ci)} with {self.oc_nthread} thread(s) need {entries} {scope} "
                                    f"entries, it holds {depth[scope]}; use smaller tiles")


def _traffic(cfg: DenseConfig, blocks: tuple[int, int, int]) -> int:
    env = get_env()
    nb, mb, kb = blocks
    tiles = (nb // cfg.tile_b[1]) * (mb // cfg.tile_co[1])
    inp = tiles * cfg.tile_b[1] * kb * env.INP_ELEM_BYTES
    wgt = tiles * cfg.tile_co[1] * kb * env.WGT_ELEM_BYTES
    return inp + wgt + nb * mb * env.OUT_ELEM_BYTES


def _modeled_cycles(cfg: DenseConfig, blocks: tuple[int, int, int]) -> float:
    """Board cycles of a tiling by the calibrated model's costs (vta.sim.perf.PYNQ_Z1), without compiling it.

    Each reduction step loads ``tile_b`` input rows and ``tile_co`` weight rows of ``tile_ci``
    blocks (every row pays the read latency, then streams at the sustained read rate) and runs
    ``tile_b * tile_co * tile_ci`` GEMM micro-ops; with 2 virtual threads the loads of one
    thread overlap the other's GEMMs, so a step costs the larger of the two, else their sum.
    """
    from vta.sim.perf import PYNQ_Z1

    hw = PYNQ_Z1
    env = get_env()
    nb, mb, kb = blocks
    b, co, ci = cfg.tile_b[1], cfg.tile_co[1], cfg.tile_ci[1]
    rate = hw.read_bytes_per_cycle or (1 << env.LOG_BUS_WIDTH) // 8
    row = hw.axi_read_latency
    load = (2 * (hw.insn_overhead + hw.dma_setup) + b * (row + ci * env.INP_ELEM_BYTES / rate)
            + co * (row + ci * env.WGT_ELEM_BYTES / rate))
    gemm = hw.insn_overhead + hw.gemm_fill + b * co * ci * hw.gemm_ii
    step = max(load, gemm) if cfg.oc_nthread > 1 else load + gemm
    tiles = (nb // b) * (mb // co)
    return tiles * (kb // ci) * step


def default_dense_config(blocks: tuple[int, int, int], name: str = "dense") -> DenseConfig:
    """The tiling of (batch, out, in) ``blocks`` that fits SRAM and the calibrated model says is fastest.

    Weight rows each pay the bus latency, so fewer, longer rows beat the least-traffic tiling
    (4096->4096: 4 KiB rows instead of 1 KiB). Ties go to the least DRAM traffic, then to the
    longest reduction tile (fewest loads), then to a virtual thread. A reduction tile longer
    than 1 needs an output tile of more than 2 entries, so no GEMM micro-op rewrites the
    accumulator entry of one of the two before it (spec §3.3).

    Examples
    --------
    >>> default_dense_config((1, 256, 256)).tile_ci
    (4, 64)
    """
    env = get_env()
    nb, mb, kb = blocks
    found = []
    for b in divisors(nb):
        for co in divisors(mb):
            for ci in divisors(kb):
                for t in (1, 2):
                    if (mb // co) % t:
                        continue
                    if ci > 1 and b * co <= 2:
                        continue
                    cfg = DenseConfig(tile_b=(nb // b, b), tile_co=(mb // co, co), tile_ci=(kb // ci, ci), oc_nthread=t)
                    if all(n <= d for n, d in zip(cfg.footprint().values(), (
                            env.INP_BUFF_DEPTH, env.WGT_BUFF_DEPTH, env.ACC_BUFF_DEPTH))):
                        found.append(cfg)
    if not found:
        raise ScheduleError(f"{name}: no tiling of {blocks} blocks fits the SRAMs")
    return min(found, key=lambda c: (round(_modeled_cycles(c, blocks)), _traffic(c, blocks), -c.tile_ci[1],
                                     -c.oc_nthread))


@dataclass(frozen=True)
class DenseTensors:
    """The tensors of one packed dense: inputs, accumulator, epilogue stages, output."""

    data: Tensor
    weight: Tensor
    res: Tensor
    ewise: tuple[Tensor, ...]
    out: Tensor

    @property
    def blocks(self) -> tuple[int, int, int]:
        """(batch, output-channel, input-channel) block counts."""
        return self.data.shape[0], self.weight.shape[0], self.data.shape[1]

    @property
    def args(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.data, self.weight, self.out


def dense_packed(data: Tensor, weight: Tensor, epilogue: Epilogue | None = None) -> DenseTensors:
    """res[n, m] = sum over k of int32(data) * int32(weight), then the epilogue and the int8 store.

    Raises
    ------
    ScheduleError
        If the layouts, dtypes or reduction lengths do not match.

    Examples
    --------
    >>> data = te.placeholder((1, 4, 1, 16), "int8", "data")
    >>> weight = te.placeholder((2, 4, 16, 16), "int8", "weight")
    >>> dense_packed(data, weight).out.shape
    (1, 2, 1, 16)
    """
    env = get_env()
    for t, entry in ((data, (env.BATCH, env.BLOCK_IN)), (weight, (env.BLOCK_OUT, env.BLOCK_IN))):
        if t.ndim != 4 or t.dtype != "int8" or t.shape[2:] != entry:
            raise ScheduleError(f"dense: {t.name} must be int8 4-d with innermost {entry}, got {t.dtype} {t.shape}")
    if data.shape[1] != weight.shape[1]:
        raise ScheduleError(f"dense: data has {data.shape[1]} input blocks, weight expects {weight.shape[1]}")
    ko = te.reduce_axis((0, data.shape[1]), "ko")
    ki = te.reduce_axis((0, env.BLOCK_IN), "ki")
    res = te.compute((data.shape[0], weight.shape[0], env.BATCH, env.BLOCK_OUT), lambda bo, co, bi, ci: te.sum(
        data[bo, ko, bi, ki].astype("int32") * weight[co, ko, ci, ki].astype("int32"), axis=[ko, ki]), "dense")
    ewise, out = (epilogue or Epilogue()).apply(res)
    return DenseTensors(data, weight, res, tuple(ewise), out)


def schedule_dense_packed(tensors: DenseTensors, config: DenseConfig | None = None, *,
                          loads_per_batch_row: bool = False) -> Schedule:
    """Output tiles at (b_outer, co_outer) in the accumulator, GEMM over (ci_outer loads, ci_inner, b, co).

    ``loads_per_batch_row`` puts the tile's batch rows outside the reduction, as TVM's
    ``schedule_dense_packed`` does: the input and weight loads then repeat for every batch row
    of the tile (the program the published logs measured); by default each reduction step loads
    the weights once for all the tile's rows.

    Raises
    ------
    ScheduleError
        If ``config`` does not match the shapes (naming the knob) or overflows an SRAM.

    Examples
    --------
    >>> data = te.placeholder((1, 4, 1, 16), "int8", "data")
    >>> weight = te.placeholder((2, 4, 16, 16), "int8", "weight")
    >>> s = schedule_dense_packed(dense_packed(data, weight))
    """
    from vta.compiler.tune.dispatch import logged_config  # the best logged knobs under tune.apply_best

    cfg = config or logged_config(tensors.blocks) or default_dense_config(tensors.blocks)
    cfg.check(tensors.blocks)
    res, out = tensors.res, tensors.out
    s = create_schedule(out)
    s[res].set_scope("local.acc_buffer")
    cdata = s.cache_read(tensors.data, "local.inp_buffer", [res])
    cweight = s.cache_read(tensors.weight, "local.wgt_buffer", [res])
    b, c, bi, ci = s[out].op.axis
    b_o, b_i = s[out].split(b, factor=cfg.tile_b[1])
    c_o, c_i = s[out].split(c, factor=cfg.tile_co[1])
    s[out].reorder(b_o, c_o, b_i, c_i, bi, ci)
    store_at = split_vthread(s[out], c_o, cfg.oc_nthread) if cfg.oc_nthread > 1 else c_o
    s[res].compute_at(s[out], store_at)
    schedule_ewise(s, tensors.ewise, s[out], store_at)
    rb, rc, rbi, rci = s[res].op.axis
    ko, ki = s[res].op.reduce_axis
    s[res].reorder(*((rb, ko) if loads_per_batch_row else (ko, rb)), rc, rbi, rci, ki)
    ko_o, _ = s[res].split(ko, factor=cfg.tile_ci[1])
    for cache in (cdata, cweight):
        s[cache].compute_at(s[res], ko_o)
        s[cache].pragma(s[cache].op.axis[0], "dma_copy")
    s[res].tensorize(rbi, gemm_intrin())
    s[out].pragma(b_i, "dma_copy")
    return s


def dense(batch: int, in_features: int, out_features: int, config: DenseConfig | None = None,
          epilogue: Epilogue | None = None, *, loads_per_batch_row: bool = False) -> ScheduledOp:
    """A scheduled packed dense layer (sizes in elements, multiples of the block sizes) and its reference.

    ``loads_per_batch_row``: TVM's loop order (see :func:`schedule_dense_packed`).

    Examples
    --------
    >>> [t.shape for t in dense(1, 64, 32).args]
    [(1, 4, 1, 16), (2, 4, 16, 16), (1, 2, 1, 16)]
    """
    env = get_env()
    for what, n, blk in (("batch", batch, env.BATCH), ("in_features", in_features, env.BLOCK_IN),
                         ("out_features", out_features, env.BLOCK_OUT)):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n % blk:
            raise ScheduleError(f"dense: {what}={n!r}: expected a positive multiple of {blk}")
    data = te.placeholder((batch // env.BATCH, in_features // env.BLOCK_IN, env.BATCH, env.BLOCK_IN), "int8", "data")
    weight = te.placeholder((out_features // env.BLOCK_OUT, in_features // env.BLOCK_IN, env.BLOCK_OUT,
                             env.BLOCK_IN), "int8", "weight")
    ep = epilogue or Epilogue()
    tensors = dense_packed(data, weight, ep)
    s = schedule_dense_packed(tensors, config, loads_per_batch_row=loads_per_batch_row)
    return ScheduledOp(f"dense_{batch}x{in_features}x{out_features}", s, tensors.args,
                       lambda d, w: ep.reference(reference.dense(d, w)))
