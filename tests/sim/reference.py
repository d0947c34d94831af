"""Plain-Python loop nests of spec §3.3/§3.4, the yardstick for the numpy kernels."""

from __future__ import annotations

import numpy as np


def wrap32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


FACTORS = ("dst_factor_out", "dst_factor_in", "src_factor_out", "src_factor_in", "wgt_factor_out", "wgt_factor_in")


def gemm(acc, inp, wgt, uops, f):
    f = {**dict.fromkeys(FACTORS, 0), **f}
    acc = acc.astype(np.int64).copy()
    for io in range(f["iter_out"]):
        for ii in range(f["iter_in"]):
            for d, s, w in uops:
                a = d + io * f["dst_factor_out"] + ii * f["dst_factor_in"]
                i = s + io * f["src_factor_out"] + ii * f["src_factor_in"]
                k = w + io * f["wgt_factor_out"] + ii * f["wgt_factor_in"]
                if f.get("reset_reg"):
                    acc[a] = 0
                else:
                    acc[a] = wrap32(acc[a] + inp[i].astype(np.int64) @ wgt[k].astype(np.int64).T)
    return wrap32(acc)


def shr(a: int, b: int) -> int:
    if b >= 0:
        return a >> min(b, 31)
    return int(wrap32((a << min(-b, 63)) & 0xFFFFFFFF))


def alu(acc, uops, f):
    f = {**dict.fromkeys(FACTORS, 0), **f}
    acc = acc.astype(np.int64).copy()
    ops = {0: min, 1: max, 2: lambda a, b: a + b, 3: shr, 4: lambda a, b: a * b}
    op = ops[f["alu_opcode"]]
    for io in range(f["iter_out"]):
        for ii in range(f["iter_in"]):
            for d, s, _ in uops:
                di = d + io * f["dst_factor_out"] + ii * f["dst_factor_in"]
                si = s + io * f["src_factor_out"] + ii * f["src_factor_in"]
                for lane in np.ndindex(acc.shape[1:]):
                    b = f["imm"] if f["use_imm"] else int(acc[si][lane])
                    acc[di][lane] = int(wrap32(op(int(acc[di][lane]), b)))
    return wrap32(acc)
