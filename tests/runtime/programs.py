"""Programs written against the runtime API alone, each with its numpy reference."""

from __future__ import annotations

import numpy as np

from vta.isa import ALU_ADD, ALU_MAX, ALU_MIN, ALU_SHR, MEM_ACC, MEM_INP, MEM_OUT, MEM_WGT
from vta.runtime import Runtime, UopKernel

LOAD, COMPUTE, STORE = 1, 2, 3


def put(rt: Runtime, arr: np.ndarray):
    buf = rt.alloc(max(arr.nbytes, 1))
    buf.copy_from(arr)
    return buf


def matmul_tile(rt: Runtime, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One 16x16 tile: 16 input rows times a 16x16 weight block, int32 accumulate, int8 store."""
    q = rt.queue
    a = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    w = rng.integers(-128, 128, (16, 16), dtype=np.int8)
    a_buf, w_buf, c_buf = put(rt, a), put(rt, w), rt.alloc(256)
    q.load_2d(a_buf, 0, 16, 1, 16, 0, 0, 0, 0, 0, MEM_INP)
    q.load_2d(w_buf, 0, 1, 1, 1, 0, 0, 0, 0, 0, MEM_WGT)
    q.dep_push(LOAD, COMPUTE)
    q.dep_pop(LOAD, COMPUTE)
    q.push_gemm("tile-reset", lambda: UopKernel.gemm([(16, 1, 0, 0)], [(0, 0, 0)], reset=True, env=rt.env))
    q.push_gemm("tile-mac", lambda: UopKernel.gemm([(16, 1, 1, 0)], [(0, 0, 0)], env=rt.env))
    q.dep_push(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_2d(0, MEM_OUT, c_buf, 0, 16, 1, 16)
    q.synchronize()
    want = (a.astype(np.int32) @ w.astype(np.int32).T).astype(np.int8)
    return c_buf.view(np.int8, (16, 16)).copy(), want


def blocked_gemm(rt: Runtime, rng: np.random.Generator, m: int = 32, k: int = 64, n: int = 64, rows: int = 8):
    """Y = X W^T in row tiles: weights loaded once and reused, two contexts ping-pong with tokens."""
    q, env = rt.queue, rt.env
    kb, nb = k // 16, n // 16
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    x_buf = put(rt, x)  # row r, block j -> INP element r*kb + j
    w_buf = put(rt, w.reshape(nb, 16, kb, 16).transpose(0, 2, 1, 3))  # (n block, k block) -> element n*kb + k
    y_buf = rt.alloc(m * n)
    inp_half, acc_half = rows * kb, rows * nb
    for _ in range(2):  # both contexts start with a free input and accumulator region
        q.dep_push(COMPUTE, LOAD)
        q.dep_push(STORE, COMPUTE)
    q.load_2d(w_buf, 0, nb * kb, 1, nb * kb, 0, 0, 0, 0, 0, MEM_WGT)
    for t in range(m // rows):
        c = t % 2
        q.dep_pop(COMPUTE, LOAD)
        q.load_2d(x_buf, t * rows * kb, rows * kb, 1, rows * kb, 0, 0, 0, 0, c * inp_half, MEM_INP)
        q.dep_push(LOAD, COMPUTE)
        q.dep_pop(LOAD, COMPUTE)
        q.dep_pop(STORE, COMPUTE)
        q.push_gemm(("bg-reset", c), lambda c=c: UopKernel.gemm(
            [(rows, nb, 0, 0)], [(c * acc_half + j, 0, 0) for j in range(nb)], reset=True, env=env))
        uops = [(c * acc_half + j, c * inp_half + i, j * kb + i) for i in range(kb) for j in range(nb)]
        q.push_gemm(("bg-mac", c), lambda uops=uops: UopKernel.gemm([(rows, nb, kb, 0)], uops, env=env))
        q.dep_push(COMPUTE, LOAD)
        q.dep_push(COMPUTE, STORE)
        q.dep_pop(COMPUTE, STORE)
        q.store_2d(c * acc_half, MEM_OUT, y_buf, t * rows * nb, rows * nb, 1, rows * nb)
        q.dep_push(STORE, COMPUTE)
    for _ in range(2):
        q.dep_pop(COMPUTE, LOAD)
        q.dep_pop(STORE, COMPUTE)
    q.synchronize()
    want = (x.astype(np.int32) @ w.astype(np.int32).T).astype(np.int8)
    return y_buf.view(np.int8, (m, n)).copy(), want


def vector_alu(rt: Runtime, rng: np.random.Generator, entries: int = 32, shift: int = 3,
               lo: int = -50, hi: int = 60, key: object = "va", sync: bool = True):
    """clip((a + b) >> shift, lo, hi) on int32 accumulator vectors, stored as int8."""
    q, env = rt.queue, rt.env
    a = rng.integers(-2000, 2000, (entries, 16), dtype=np.int32)
    b = rng.integers(-2000, 2000, (entries, 16), dtype=np.int32)
    a_buf, b_buf, c_buf = put(rt, a), put(rt, b), rt.alloc(entries * 16)
    q.load_2d(a_buf, 0, entries, 1, entries, 0, 0, 0, 0, 0, MEM_ACC)
    q.load_2d(b_buf, 0, entries, 1, entries, 0, 0, 0, 0, entries, MEM_ACC)
    q.push_alu((key, "add"), lambda: UopKernel.alu([(entries, 1, 1)], [(0, entries)], ALU_ADD, env=env))
    for op, imm in ((ALU_SHR, shift), (ALU_MAX, lo), (ALU_MIN, hi)):
        q.push_alu((key, op, imm), lambda op=op, imm=imm: UopKernel.alu(
            [(entries, 1, 1)], [(0, 0)], op, use_imm=True, imm=imm, env=env))
    q.dep_push(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_2d(0, MEM_OUT, c_buf, 0, entries, 1, entries)
    q.dep_push(STORE, COMPUTE)
    q.dep_pop(STORE, COMPUTE)
    if sync:
        q.synchronize()
    want = np.clip((a.astype(np.int64) + b) >> shift, lo, hi).astype(np.int8)
    return c_buf, want


def conv3x3_tile(rt: Runtime, rng: np.random.Generator, h: int = 6, w: int = 6, shift: int = 6):
    """One 3x3, pad-1 convolution tile (16 in, 16 out channels); the zero border comes from LOAD padding."""
    q, env = rt.queue, rt.env
    x = rng.integers(-128, 128, (h, w, 16), dtype=np.int8)  # NHWC with one 16-channel block
    k = rng.integers(-128, 128, (16, 16, 3, 3), dtype=np.int8)  # OIHW
    x_buf = put(rt, x)
    k_buf = put(rt, k.transpose(2, 3, 0, 1).copy())  # (kh, kw) -> one 16x16 "OI" weight element
    y_buf = rt.alloc(h * w * 16)
    wp = w + 2
    q.load_2d(x_buf, 0, w, h, w, 1, 1, 1, 1, 0, MEM_INP)  # (h+2) x (w+2) entries, border zero
    q.load_2d(k_buf, 0, 9, 1, 9, 0, 0, 0, 0, 0, MEM_WGT)
    q.dep_push(LOAD, COMPUTE)
    q.dep_pop(LOAD, COMPUTE)
    q.push_gemm("conv-reset", lambda: UopKernel.gemm([(h * w, 1, 0, 0)], [(0, 0, 0)], reset=True, env=env))
    # uops over (kernel row, output row); loops over output column (outer) and kernel column (inner)
    uops = [(oh * w, (oh + kh) * wp, kh * 3) for kh in range(3) for oh in range(h)]
    q.push_gemm("conv-mac", lambda: UopKernel.gemm([(w, 1, 1, 0), (3, 0, 1, 1)], uops, env=env))
    for op, imm in ((ALU_SHR, shift), (ALU_MAX, 0), (ALU_MIN, 127)):
        q.push_alu(("conv", op), lambda op=op, imm=imm: UopKernel.alu(
            [(h * w, 1, 1)], [(0, 0)], op, use_imm=True, imm=imm, env=env))
    q.dep_push(COMPUTE, STORE)
    q.dep_pop(COMPUTE, STORE)
    q.store_2d(0, MEM_OUT, y_buf, 0, h * w, 1, h * w)
    q.synchronize()
    xp = np.pad(x.astype(np.int64), ((1, 1), (1, 1), (0, 0)))
    acc = np.zeros((h, w, 16), np.int64)
    for kh in range(3):
        for kw in range(3):
            acc += xp[kh:kh + h, kw:kw + w] @ k[:, :, kh, kw].T.astype(np.int64)
    want = np.clip(acc >> shift, 0, 127).astype(np.int8)
    return y_buf.view(np.int8, (h, w, 16)).copy(), want
