"""``vta demo``: a quantized dense layer run on the simulated VTA and checked against numpy.

The program is written instruction by instruction (LOAD, GEMM, ALU requantize, STORE) so the
demo shows the ISA itself; it reports the simulator's counters and time.
"""

from __future__ import annotations

import time

import numpy as np

from vta.config import Environment, get_env
from vta.isa import (
    ALU_MAX,
    ALU_MIN,
    ALU_SHR,
    MEM_INP,
    MEM_OUT,
    MEM_UOP,
    MEM_WGT,
    OP_STORE,
    AluInsn,
    FinishInsn,
    GemmInsn,
    MemInsn,
    encode_stream,
    get_isa,
)
from vta.sim.device import SimDevice

__all__ = ["dense_demo", "main"]


def _put(dev: SimDevice, data: np.ndarray) -> int:
    raw = np.ascontiguousarray(data).view(np.uint8).ravel()
    buf = dev.dram.alloc(len(raw))
    buf.data[:] = raw
    return buf.phys_addr


def dense_demo(n_in: int, n_out: int, shift: int = 8, seed: int = 0, env: Environment | None = None) -> dict:
    """Run clip((x @ W.T) >> shift, 0, 127) for one int8 row on the simulator; return results and counters."""
    env = env or get_env()
    bi, bo = env.BLOCK_IN, env.BLOCK_OUT
    ki, ko = n_in // bi, n_out // bo
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, n_in), dtype=np.int8)
    w = rng.integers(-128, 128, (n_out, n_in), dtype=np.int8)
    dev = SimDevice(env)
    w_packed = w.reshape(ko, bo, ki, bi).transpose(0, 2, 1, 3)  # (out block, in block, 16 out, 16 in)
    x_at, w_at = _put(dev, x), _put(dev, w_packed)
    out = dev.dram.alloc(n_out)
    isa = get_isa(env)
    uops = isa.encode_uops(np.array([0, 0]), np.array([0, 0]), np.array([0, 0]))  # GEMM uop, ALU uop
    u_at = _put(dev, uops)
    alu = dict(uop_bgn=1, uop_end=2, iter_out=1, iter_in=ko, dst_factor_in=1, src_factor_in=1, use_imm=1)
    insns = [
        MemInsn(memory_type=MEM_UOP, dram_base=u_at // 4, y_size=1, x_size=2, x_stride=2),
        MemInsn(memory_type=MEM_INP, dram_base=x_at // env.INP_ELEM_BYTES, y_size=1, x_size=ki, x_stride=ki),
        MemInsn(memory_type=MEM_WGT, dram_base=w_at // env.WGT_ELEM_BYTES, y_size=1, x_size=ki * ko,
                x_stride=ki * ko, push_next_dep=1),
        GemmInsn(reset_reg=1, uop_bgn=0, uop_end=1, iter_out=ko, iter_in=1, dst_factor_out=1),
        GemmInsn(pop_prev_dep=1, uop_bgn=0, uop_end=1, iter_out=ko, iter_in=ki, dst_factor_out=1,
                 src_factor_in=1, wgt_factor_out=ki, wgt_factor_in=1),
        AluInsn(alu_opcode=ALU_SHR, imm=shift, **alu),
        AluInsn(alu_opcode=ALU_MAX, imm=0, **alu),
        AluInsn(alu_opcode=ALU_MIN, imm=127, push_next_dep=1, **alu),
        MemInsn(opcode=OP_STORE, memory_type=MEM_OUT, dram_base=out.phys_addr // env.OUT_ELEM_BYTES, y_size=1,
                x_size=ko, x_stride=ko, pop_prev_dep=1, push_prev_dep=1),
        FinishInsn(pop_next_dep=1),
    ]
    stream = np.frombuffer(encode_stream(insns, env), dtype=np.uint8)
    start = time.perf_counter()
    result = dev.run(_put(dev, stream), len(insns))
    seconds = time.perf_counter() - start
    want = np.clip((x.astype(np.int64) @ w.astype(np.int64).T) >> shift, 0, 127).astype(np.int8).ravel()
    got = out.view(np.int8).copy()
    return {"shape": (n_in, n_out), "insns": len(insns), "ok": bool(np.array_equal(got, want)),
            "seconds": seconds, "counters": result.counters}


def main() -> int:
    print("pynq-vta demo: quantized dense layers on the simulated VTA (checked against numpy)\n")
    print(f"{'in x out':>11s} {'insns':>5s} {'GEMM uops':>9s} {'DRAM bytes':>10s} {'sim ms':>7s}  check")
    ok = True
    for n_in, n_out in ((256, 256), (512, 256), (512, 512)):  # weights fit the 1024-entry WGT SRAM
        r = dense_demo(n_in, n_out)
        c = r["counters"]
        dram = sum(v for k, v in c.items() if k.endswith("nbytes"))
        print(f"{n_in:>5d} x {n_out:<5d} {r['insns']:5d} {c['gemm_counter']:9d} {dram:10d} "
              f"{r['seconds'] * 1e3:7.2f}  {'ok' if r['ok'] else 'MISMATCH'}")
        ok &= r["ok"]
    return 0 if ok else 1
