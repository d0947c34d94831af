"""2-D max-pool of packed int32 activations on the ALU.

Each tile of the (padded) input is loaded into ``local.acc_buffer``; the output tile starts as
a copy of window element (0, 0) and every other window element is folded in by one MAX
kernel, in place on the running maximum, reading the input tile at the shifted index.

Padding: the LOAD unit only inserts zeros (spec §3.2), so padded positions take part as 0,
not as -infinity. That equals a true max-pool exactly when the inputs are >= 0, as after the
relu in ResNet-18; for negative inputs next to the border the result is 0 instead. The
reference (``reference.max_pool2d`` with its default ``pad_value=0``) does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vta.compiler import reference, te
from vta.compiler.ops.common import (
    ACC_SCOPE,
    Epilogue,
    ScheduledOp,
    divisors,
    pair,
    require_int32_input,
    schedule_ewise,
)
from vta.compiler.schedule import Schedule, create_schedule
from vta.compiler.te import Tensor
from vta.config import get_env
from vta.errors import ScheduleError

__all__ = ["PoolTensors", "max_pool2d", "max_pool2d_packed", "schedule_max_pool2d_packed"]


@dataclass(frozen=True)
class PoolTensors:
    """Input, padded input, the running-maximum stages, the epilogue stages and the int8 output."""

    data: Tensor
    data_pad: Tensor | None
    window: tuple[Tensor, ...]
    ewise: tuple[Tensor, ...]
    out: Tensor
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: tuple[int, int]

    @property
    def args(self) -> tuple[Tensor, Tensor]:
        return self.data, self.out


def max_pool2d_packed(data: Tensor, pool_size: int | Sequence[int], strides: int | Sequence[int] = 1,
                      padding: int | Sequence[int] = 0, epilogue: Epilogue | None = None) -> PoolTensors:
    """Max over each ``pool_size`` window of H and W, zero-padded (see the module note), then the epilogue.

    Parameters
    ----------
    data
        int32 packed activations (N/1, C/16, H, W, 1, 16).
    pool_size, strides, padding
        An integer or an (H, W) pair each.
    epilogue
        Shift / relu / clip stages before the int8 store.

    Returns
    -------
    PoolTensors

    Raises
    ------
    ScheduleError
        If ``data`` is not int32 packed activations or the window does not fit.

    Examples
    --------
    >>> x = te.placeholder((1, 4, 112, 112, 1, 16), "int32", "x")
    >>> max_pool2d_packed(x, 3, 2, 1).out.shape
    (1, 4, 56, 56, 1, 16)
    """
    require_int32_input(data, "max_pool2d")
    env = get_env()
    if data.ndim != 6 or data.shape[4:] != (env.BATCH, env.BLOCK_OUT):
        raise ScheduleError(f"max_pool2d: {data.name} must be 6-d NCHW{env.BATCH}n{env.BLOCK_OUT}c, got shape "
                            f"{data.shape}")
    (kh, kw), (sh, sw) = pair(pool_size, "max_pool2d: pool_size"), pair(strides, "max_pool2d: strides")
    ph, pw = pair(padding, "max_pool2d: padding", low=0)
    h, w = data.shape[2] + 2 * ph, data.shape[3] + 2 * pw
    if kh > h or kw > w:
        raise ScheduleError(f"max_pool2d: a {kh}x{kw} window does not fit the {h}x{w} padded input")
    shape = data.shape[:2] + ((h - kh) // sh + 1, (w - kw) // sw + 1) + data.shape[4:]
    dpad = te.pad(data, (0, 0, ph, pw, 0, 0), name="data_pad") if ph or pw else None
    src = dpad if dpad is not None else data

    def at(di: int, dj: int):
        return lambda b, c, i, j, bi, ci: src[b, c, i * sh + di if di else i * sh, j * sw + dj if dj else j * sw, bi,
                                              ci]

    window = [te.compute(shape, at(0, 0), "max_0_0")]
    for di in range(kh):
        for dj in range(kw):
            if di or dj:
                prev, elem = window[-1], at(di, dj)
                window.append(te.compute(shape, lambda *i, p=prev, e=elem: te.max(p[i], e(*i)), f"max_{di}_{dj}"))
    ewise, out = (epilogue or Epilogue()).apply(window[-1])
    return PoolTensors(data, dpad, tuple(window), tuple(ewise), out, (kh, kw), (sh, sw), (ph, pw))


def _entries(t: PoolTensors, th: int, tw: int) -> tuple[int, int]:
    """Accumulator entries of the input tile and of the output tile (the window stages work in place)."""
    (kh, kw), (sh, sw), (ph, pw) = t.pool_size, t.strides, t.padding
    rows = min((th - 1) * sh + kh, t.data.shape[2] + 2 * ph)
    cols = min((tw - 1) * sw + kw, t.data.shape[3] + 2 * pw)
    return rows * cols, th * tw


def _pick_tile(t: PoolTensors) -> tuple[int, int]:
    """(rows, cols) of the output tile: fewest tiles whose input + output fit the accumulator.

    Ties go to the least input re-read (window overlap between tiles), then to wider rows.
    """
    depth = get_env().ACC_BUFF_DEPTH
    oh, ow = t.out.shape[2:4]
    best = None
    for th in divisors(oh):
        for tw in divisors(ow):
            inp, outp = _entries(t, th, tw)
            tiles = (oh // th) * (ow // tw)
            key = (tiles, tiles * inp, -tw)
            if inp + outp <= depth and (best is None or key < best[0]):
                best = (key, (th, tw))
    if best is None:
        raise ScheduleError(f"max_pool2d: even a 1x1 output tile needs {sum(_entries(t, 1, 1))} accumulator "
                            f"entries, more than {depth}")
    return best[1]


def _check_tile(t: PoolTensors, tile: tuple[int, int]) -> None:
    for n, extent, what in zip(tile, t.out.shape[2:4], ("height", "width")):
        if extent % n:
            raise ScheduleError(f"max_pool2d: tile={list(tile)}: {n} does not divide the output {what} {extent}")
    inp, outp = _entries(t, *tile)
    depth = get_env().ACC_BUFF_DEPTH
    if inp + outp > depth:
        raise ScheduleError(f"max_pool2d: tile={list(tile)} needs {inp} input + {outp} output accumulator entries, "
                            f"it holds {depth} (ACC_BUFF_DEPTH)")


def schedule_max_pool2d_packed(tensors: PoolTensors, tile: tuple[int, int] | None = None) -> Schedule:
    """One channel block and ``tile`` = (rows, cols) of output per accumulator tile (default: fewest tiles).

    Loops: (b, c, h_outer, w_outer, h_inner, w_inner, lanes); the input tile, the window stages
    and the epilogue are computed at ``w_outer``, and the store covers (h_inner, w_inner).

    Raises
    ------
    ScheduleError
        If ``tile`` does not divide the output or its input and output tiles overflow the accumulator.

    Examples
    --------
    >>> x = te.placeholder((1, 4, 112, 112, 1, 16), "int32", "x")
    >>> s = schedule_max_pool2d_packed(max_pool2d_packed(x, 3, 2, 1), (4, 56))
    """
    if tile is None:
        th, tw = _pick_tile(tensors)
    else:
        th, tw = pair(tile, "max_pool2d: tile")
        _check_tile(tensors, (th, tw))
    out = tensors.out
    s = create_schedule(out)
    if tensors.data_pad is not None:
        cdata = tensors.data_pad
        s[cdata].set_scope(ACC_SCOPE)
    else:
        cdata = s.cache_read(tensors.data, ACC_SCOPE, list(tensors.window))
    b, c, y, x, bi, ci = s[out].op.axis
    y_o, y_i = s[out].split(y, factor=th)
    x_o, x_i = s[out].split(x, factor=tw)
    s[out].reorder(b, c, y_o, x_o, y_i, x_i, bi, ci)
    s[cdata].compute_at(s[out], x_o)
    s[cdata].pragma(s[cdata].op.axis[0], "dma_copy")
    schedule_ewise(s, (*tensors.window, *tensors.ewise), s[out], x_o)
    s[out].pragma(y_i, "dma_copy")
    return s


def max_pool2d(shape: Sequence[int], pool_size: int | Sequence[int], strides: int | Sequence[int] = 1,
               padding: int | Sequence[int] = 0, epilogue: Epilogue | None = None,
               tile: tuple[int, int] | None = None) -> ScheduledOp:
    """A scheduled max-pool of int32 packed activations of ``shape``, with its zero-padded reference.

    Examples
    --------
    >>> op = max_pool2d((1, 4, 112, 112, 1, 16), 3, 2, 1, Epilogue(clip=(0, 127)))
    >>> op.output.shape
    (1, 4, 56, 56, 1, 16)
    """
    data = te.placeholder(tuple(shape), "int32", "data")
    ep = epilogue or Epilogue()
    t = max_pool2d_packed(data, pool_size, strides, padding, ep)
    s = schedule_max_pool2d_packed(t, tile)
    return ScheduledOp("max_pool2d", s, t.args,
                       lambda d: ep.reference(reference.max_pool2d(d, t.pool_size, t.strides, t.padding)))
