"""Where each tensor of a compiled network lives and in which layout, and the conversions at boundaries.

A tensor's geometry is (C, H, W); a flat tensor keeps the geometry it was flattened from (a
dense output is (M, 1, 1)). Packed means NCHW1n16c with C padded to the block (pad channels
are ignored: the weights that read them are zero), stored (1, C/16, H, W, 1, 16); a flat
tensor in packed order is the same bytes, which is what a VTA dense reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vta.compiler.layout import pack_dense_weight, pack_nchw, pack_oihw, unpack_nchw
from vta.config import get_env

if TYPE_CHECKING:
    from vta.compiler.graph.network import Network

__all__ = ["BLOCK", "from_packed", "infer", "pack_conv_weight", "pack_dense_weight_for", "packed_bytes",
           "packed_shape", "padded", "to_packed"]


def BLOCK() -> int:
    env = get_env()
    assert env.BLOCK_IN == env.BLOCK_OUT, "packed activations assume square GEMM blocks"
    return env.BLOCK_IN


def padded(n: int) -> int:
    b = BLOCK()
    return -(-n // b) * b


def packed_shape(geom: tuple[int, int, int]) -> tuple[int, ...]:
    c, h, w = geom
    return (1, padded(c) // BLOCK(), h, w, 1, BLOCK())


def packed_bytes(geom: tuple[int, int, int]) -> int:
    return int(np.prod(packed_shape(geom)))


def to_packed(y: np.ndarray, geom: tuple[int, int, int]) -> np.ndarray:
    """A logical (1, C, H, W) or (1, C*H*W) int8 tensor -> packed, channels zero-padded."""
    c, h, w = geom
    x = y.reshape(1, c, h, w)
    if padded(c) != c:
        x = np.pad(x, ((0, 0), (0, padded(c) - c), (0, 0), (0, 0)))
    return pack_nchw(x, 1, BLOCK())


def from_packed(x: np.ndarray, geom: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Packed bytes -> the logical tensor (1, *shape), pad channels dropped."""
    c = geom[0]
    return np.ascontiguousarray(unpack_nchw(x.reshape(packed_shape(geom)))[:, :c]).reshape(1, *shape)


def pack_conv_weight(w: np.ndarray) -> np.ndarray:
    """OIHW int8 -> (O/16, I/16, k, k, 16, 16), both channel counts zero-padded."""
    o, i = w.shape[:2]
    w = np.pad(w, ((0, padded(o) - o), (0, padded(i) - i), (0, 0), (0, 0)))
    return pack_oihw(w, BLOCK(), BLOCK())


def pack_dense_weight_for(w: np.ndarray, geom: tuple[int, int, int]) -> np.ndarray:
    """(M, C*H*W) int8 whose columns follow C, H, W order -> packed weights that read packed-order input.

    Column p of the packed-order input is channel c = cb*16 + ci at (h, w); it takes the logical
    column c*H*W + h*W + w (zero for pad channels), so the flatten costs nothing at run time.
    """
    c, h, wd = geom
    cb = padded(c) // BLOCK()
    idx = np.arange(cb * h * wd * BLOCK()).reshape(cb, h, wd, BLOCK())
    chan = np.arange(cb)[:, None, None, None] * BLOCK() + np.arange(BLOCK())
    logical = chan * h * wd + np.arange(h)[None, :, None, None] * wd + np.arange(wd)[None, None, :, None]
    valid = np.broadcast_to(chan < c, idx.shape)
    wp = np.zeros((padded(w.shape[0]), idx.size), np.int8)
    wp[:w.shape[0], idx[valid]] = w[:, logical[valid]]
    return pack_dense_weight(wp)


def infer(net: Network) -> None:
    """Fill ``net.geom`` and ``net.layout`` (host layout of CPU results) from the graph and the placement."""
    qg = net.graph
    for name, node in qg.nodes.items():
        src = node.inputs[0] if node.inputs else None
        if node.op == "input" or (len(node.shape) == 3 and node.op != "flatten"):
            net.geom[name] = tuple(node.shape)  # type: ignore[assignment]
        elif node.op == "dense":
            net.geom[name] = (node.shape[0], 1, 1)
        else:
            net.geom[name] = net.geom[src]
        p = net.placement.get(name)
        if (p is not None and p.target == "vta") or node.op in ("input", "conv2d", "dense", "softmax", "argmax"):
            net.layout[name] = "packed" if p is not None and p.target == "vta" else "nchw"
        else:
            ins = [net.layout[i] for i in node.inputs]
            net.layout[name] = "packed" if "packed" in ins else "nchw"
