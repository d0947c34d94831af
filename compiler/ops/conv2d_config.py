"""The conv2d workload, the seven knobs of the VTA conv2d template, and the default tiler.

The knobs are TVM's (spec §7.3): ``tile_b``, ``tile_h``, ``tile_w``, ``tile_ci``, ``tile_co`` are
``[outer, inner]`` splits of the batch, output rows, output columns, input-channel blocks and
output-channel blocks; ``oc_nthread`` and ``h_nthread`` split the outer output-channel / row
loop into 2 virtual threads. The inner sizes are one virtual thread's tile; the outer sizes
include the thread factor, so published configurations apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.compiler.ops.common import check_shape_fields, check_thread_split, divisors, split_knob, thread_knob
from vta.compiler.stage import SRAM_DEPTH
from vta.config import Environment, get_env
from vta.errors import ScheduleError

__all__ = ["Conv2dConfig", "Conv2dWorkload", "conv2d_footprint", "conv2d_traffic", "default_conv2d_config"]

_TILES = ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co")
_THREADS = ("oc_nthread", "h_nthread")
_SCOPES = ("local.inp_buffer", "local.wgt_buffer", "local.acc_buffer")
_KNOBS_OF = {"local.inp_buffer": "tile_h, tile_w, tile_ci", "local.wgt_buffer": "tile_ci, tile_co",
             "local.acc_buffer": "tile_h, tile_w, tile_co"}


@dataclass(frozen=True)
class Conv2dWorkload:
    """One conv2d layer in logical units: square ``kernel``, equal ``stride`` and ``pad`` on H and W.

    ``groups`` > 1 is a grouped convolution (TVM's ``group_conv2d_packed``): output channel
    block ``c`` is group ``c`` and reads only that group's input channel blocks (one output block
    per group, a whole number of input blocks per group: the grouped layers of MobileNet-G).

    Examples
    --------
    >>> wl = Conv2dWorkload("C2", 56, 56, 64, 64, 3, 1, 1)
    >>> (wl.out_h, wl.data_shape, wl.kernel_shape)
    (56, (1, 4, 56, 56, 1, 16), (4, 4, 3, 3, 16, 16))
    """

    name: str
    h: int
    w: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    pad: int
    batch: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        check_shape_fields(self, "conv2d")
        if self.out_h < 1 or self.out_w < 1:
            raise ScheduleError(f"conv2d {self.name}: a {self.kernel}x{self.kernel} kernel does not fit the "
                                f"{self.h}x{self.w} input padded by {self.pad}")

    @property
    def out_h(self) -> int:
        return (self.h + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.w + 2 * self.pad - self.kernel) // self.stride + 1

    def _blocks(self, what: str, n: int, block: int) -> int:
        if n % block:
            raise ScheduleError(f"conv2d {self.name}: {what}={n} is not a multiple of {block}; zero-pad it first")
        return n // block

    def blocks(self, env: Environment | None = None) -> tuple[int, int, int]:
        """(batch, input-channel, output-channel) counts of packed blocks."""
        env = env or get_env()
        out = (self._blocks("batch", self.batch, env.BATCH), self._blocks("in_channels", self.in_channels,
               env.BLOCK_IN), self._blocks("out_channels", self.out_channels, env.BLOCK_OUT))
        if self.groups > 1 and (out[1] % self.groups or out[2] != self.groups):
            raise ScheduleError(f"conv2d {self.name}: groups={self.groups}: a grouped conv2d needs one output "
                                f"channel block per group ({out[2]} output blocks given) and a whole number of "
                                f"input blocks per group ({out[1]} given), as TVM's group_conv2d_packed uses them")
        return out

    def reduce_blocks(self, env: Environment | None = None) -> int:
        """Input-channel blocks each output block sums over: all of them, or those of its group."""
        return self.blocks(env)[1] // self.groups

    @property
    def data_shape(self) -> tuple[int, ...]:
        env = get_env()
        nb, cib, _ = self.blocks(env)
        return (nb, cib, self.h, self.w, env.BATCH, env.BLOCK_IN)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        env = get_env()
        _, cib, cob = self.blocks(env)
        return (cob, cib // self.groups, self.kernel, self.kernel, env.BLOCK_OUT, env.BLOCK_IN)

    @property
    def out_shape(self) -> tuple[int, ...]:
        env = get_env()
        nb, _, cob = self.blocks(env)
        return (nb, cob, self.out_h, self.out_w, env.BATCH, env.BLOCK_OUT)

    @property
    def ops(self) -> int:
        """Integer operations (2 per multiply-accumulate), as TVM registers them."""
        return (2 * self.batch * self.out_channels * self.out_h * self.out_w * self.in_channels * self.kernel ** 2
                // self.groups)

    def random_inputs(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Packed int8 data and kernel over the whole int8 range."""
        data = rng.integers(-128, 128, self.data_shape).astype(np.int8)
        kernel = rng.integers(-128, 128, self.kernel_shape).astype(np.int8)
        return data, kernel


@dataclass(frozen=True, kw_only=True)
class Conv2dConfig:
    """The seven knobs of TVM's VTA conv2d template (spec §7.3); lists are accepted for the splits.

    Raises
    ------
    ScheduleError
        If a split is not two positive integers or a thread count is not 1 or 2; :meth:`check`
        compares the knobs with a workload.

    Examples
    --------
    >>> cfg = Conv2dConfig(tile_h=[7, 8], tile_w=[1, 56], tile_ci=[4, 1], tile_co=[2, 2], oc_nthread=2)
    >>> cfg.tile_h, cfg.threads
    ((7, 8), 2)
    """

    tile_h: tuple[int, int]
    tile_w: tuple[int, int]
    tile_ci: tuple[int, int]
    tile_co: tuple[int, int]
    tile_b: tuple[int, int] = (1, 1)
    oc_nthread: int = 1
    h_nthread: int = 1

    def __post_init__(self) -> None:
        for knob in _TILES:
            object.__setattr__(self, knob, split_knob("Conv2dConfig", knob, getattr(self, knob)))
        for knob in _THREADS:
            thread_knob("Conv2dConfig", knob, getattr(self, knob))

    @property
    def threads(self) -> int:
        """Virtual threads, each with its own copy of every SRAM tile (spec §7.4)."""
        return self.oc_nthread * self.h_nthread

    def check(self, wl: Conv2dWorkload) -> None:
        """Raise ScheduleError naming the knob if this configuration cannot run ``wl``."""
        nb, _, cob = wl.blocks()
        extents = {"tile_b": (nb, "batch blocks"), "tile_h": (wl.out_h, "output height"),
                   "tile_w": (wl.out_w, "output width"), "tile_ci": (wl.reduce_blocks(), "input-channel blocks"),
                   "tile_co": (cob, "output-channel blocks")}
        for knob, (n, what) in extents.items():
            o, i = getattr(self, knob)
            if o * i != n:
                raise ScheduleError(f"conv2d {wl.name}: {knob}={[o, i]}: {o} x {i} = {o * i}, expected the {what} "
                                    f"{n}")
        for knob, n_in in (("tile_h", wl.h), ("tile_w", wl.w)):
            bad = _padding_only_tile(getattr(self, knob)[1], n_in, wl)
            if bad is not None:
                raise ScheduleError(f"conv2d {wl.name}: {knob}={list(getattr(self, knob))}: output {bad[0]}..{bad[1]} "
                                    f"read(s) only the zero padding (pad {wl.pad}), which the input DMA cannot load "
                                    "as a tile; use a tile size whose every tile overlaps the data")
        for knob, split in (("oc_nthread", "tile_co"), ("h_nthread", "tile_h")):
            check_thread_split(f"conv2d {wl.name}", knob, getattr(self, knob), split, getattr(self, split))
        env = get_env()
        for scope, entries in conv2d_footprint(wl, self).items():
            depth = getattr(env, SRAM_DEPTH[scope])
            if entries > depth:
                raise ScheduleError(
                    f"conv2d {wl.name}: {_KNOBS_OF[scope]} = {self._show(_KNOBS_OF[scope])} with {self.threads} "
                    f"virtual thread(s) need {entries} {scope} entries, it holds {depth} ({SRAM_DEPTH[scope]}); "
                    "use smaller tiles or fewer threads")

    def _show(self, knobs: str) -> str:
        return ", ".join(str(list(getattr(self, k))) for k in knobs.split(", "))


def _tile_in(n_out: int, stride: int, kernel: int, n_padded: int) -> int:
    return min((n_out - 1) * stride + kernel, n_padded)


def _inp_blocks(wl: Conv2dWorkload, ci: int, co: int) -> int:
    """Input-channel blocks one input tile holds: ``ci`` of each group the ``co``-block output tile spans."""
    if wl.groups == 1:
        return ci
    _, cib, cob = wl.blocks()
    per = cob // wl.groups
    spanned = max((j * co + co - 1) // per - (j * co) // per for j in range(cob // co))
    return spanned * (cib // wl.groups) + ci


def conv2d_footprint(wl: Conv2dWorkload, cfg: Conv2dConfig) -> dict[str, int]:
    """SRAM entries per scope, all virtual threads included; the epilogue works in place in the conv tile."""
    h, w, ci, co = cfg.tile_h[1], cfg.tile_w[1], cfg.tile_ci[1], cfg.tile_co[1]
    rows = _tile_in(h, wl.stride, wl.kernel, wl.h + 2 * wl.pad)
    cols = _tile_in(w, wl.stride, wl.kernel, wl.w + 2 * wl.pad)
    t = cfg.threads
    return {"local.inp_buffer": rows * cols * _inp_blocks(wl, ci, co) * t,
            "local.wgt_buffer": wl.kernel ** 2 * ci * co * t, "local.acc_buffer": h * w * co * t}


def conv2d_traffic(wl: Conv2dWorkload, cfg: Conv2dConfig) -> int:
    """DRAM bytes moved: every per-thread output tile streams its input rows and weights over all channels."""
    env = get_env()
    nb, _, cob = wl.blocks(env)
    red = wl.reduce_blocks(env)
    h, w, ci, co = cfg.tile_h[1], cfg.tile_w[1], cfg.tile_ci[1], cfg.tile_co[1]
    tiles = nb * (wl.out_h // h) * (wl.out_w // w) * (cob // co)
    rows = _tile_in(h, wl.stride, wl.kernel, wl.h + 2 * wl.pad)
    cols = _tile_in(w, wl.stride, wl.kernel, wl.w + 2 * wl.pad)
    inp = tiles * rows * cols * _inp_blocks(wl, ci, co) * (red // ci) * env.INP_ELEM_BYTES
    wgt = tiles * co * red * wl.kernel ** 2 * env.WGT_ELEM_BYTES
    out = nb * cob * wl.out_h * wl.out_w * env.OUT_ELEM_BYTES
    return inp + wgt + out


def _padding_only_tile(tile: int, n_in: int, wl: Conv2dWorkload) -> tuple[int, int] | None:
    """The first output range of ``tile`` rows (or columns) whose input window lies wholly in the padding."""
    out = (n_in + 2 * wl.pad - wl.kernel) // wl.stride + 1
    for start in range(0, out, tile):
        lo = start * wl.stride - wl.pad
        hi = (start + tile - 1) * wl.stride - wl.pad + wl.kernel - 1
        if hi < 0 or lo >= n_in:
            return start, start + tile - 1
    return None


def _spatial_ok(tile: int, extent: int) -> bool:
    """Rule (d) of the tiler: more than 2 rows/columns, so no acc entry is rewritten within 2 cycles."""
    return tile > 2 or tile == extent


def default_conv2d_config(wl: Conv2dWorkload) -> Conv2dConfig:
    """The historical VTA tiler (spec §7.3): the legal tiling with the least DRAM traffic.

    Every (h, w, ci, co) tile and thread choice (oc or h thread of 2, never both) is tried;
    a tiling survives if its input, weight and accumulator tiles fit their SRAMs counting one
    copy per virtual thread, and its tile has more than 2 rows and columns (or the whole axis).
    When a prime output extent leaves no such tiling (Inception-v3's 149 and 71), thinner tiles
    are tried too: code generation keeps consecutive GEMM micro-ops on different accumulator
    entries whatever the tile (the compiled layers lint clean), the rule only favours long GEMMs.
    If any survivor uses a virtual thread only those are kept (latency hiding). Ties in traffic
    go to the smaller ``tile_ci`` inner size (one 2-D DMA per input load, as every published
    configuration uses), then to the wider tile.

    Raises
    ------
    ScheduleError
        If no tiling fits, e.g. a kernel whose weights alone overflow the weight SRAM.

    Examples
    --------
    >>> default_conv2d_config(Conv2dWorkload("C11", 7, 7, 512, 512, 3, 1, 1)).tile_co
    (2, 16)
    """
    found = _candidates(wl, strict=True) or _candidates(wl, strict=False)
    if not found:
        raise ScheduleError(f"conv2d {wl.name}: no tiling fits the SRAMs: even a one-element tile of one channel "
                            f"block with one thread needs {conv2d_footprint(wl, _smallest(wl))} entries (inp, wgt, "
                            "acc); the weights of one block pair are too large")
    threaded = [c for c in found if c.threads > 1] or found
    return min(threaded, key=lambda c: (conv2d_traffic(wl, c), c.tile_ci[1], -c.tile_w[1], -c.tile_h[1]))


def _candidates(wl: Conv2dWorkload, strict: bool) -> list[Conv2dConfig]:
    """Every tiling that fits; ``strict``: only tiles of more than 2 rows and columns (or the whole axis)."""
    env = get_env()
    nb, _, cob = wl.blocks(env)
    found = []
    hs = [f for f in divisors(wl.out_h) if (not strict or _spatial_ok(f, wl.out_h))
          and _padding_only_tile(f, wl.h, wl) is None]
    ws = [f for f in divisors(wl.out_w) if (not strict or _spatial_ok(f, wl.out_w))
          and _padding_only_tile(f, wl.w, wl) is None]
    red = wl.reduce_blocks(env)
    depth = {scope: getattr(env, attr) for scope, attr in SRAM_DEPTH.items()}
    for h in hs:
        rows = _tile_in(h, wl.stride, wl.kernel, wl.h + 2 * wl.pad)
        for w in ws:
            cols = _tile_in(w, wl.stride, wl.kernel, wl.w + 2 * wl.pad)
            for ci in divisors(red):
                for co in divisors(cob):
                    need = (rows * cols * _inp_blocks(wl, ci, co), wl.kernel ** 2 * ci * co, h * w * co)
                    for ht, ot in ((1, 1), (1, 2), (2, 1)):
                        t = ht * ot
                        if (wl.out_h // h) % ht or (cob // co) % ot or any(
                                n * t > depth[scope] for n, scope in zip(need, _SCOPES)):
                            continue  # the footprint of conv2d_footprint, without building the config first
                        found.append(Conv2dConfig(tile_b=(nb, 1), tile_h=(wl.out_h // h, h),
                                                  tile_w=(wl.out_w // w, w), tile_ci=(red // ci, ci),
                                                  tile_co=(cob // co, co), oc_nthread=ot, h_nthread=ht))
    return found


def _smallest(wl: Conv2dWorkload) -> Conv2dConfig:
    nb, _, cob = wl.blocks()
    return Conv2dConfig(tile_b=(nb, 1), tile_h=(wl.out_h, 1), tile_w=(wl.out_w, 1), tile_ci=(wl.reduce_blocks(), 1),
                        tile_co=(cob, 1))
