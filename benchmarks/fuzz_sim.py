"""Random instruction streams on the simulator: every one must run to FINISH or be refused cleanly.

Each program is 1..16 instructions: half pure random bytes; a quarter random bytes with valid
opcodes (0..4) and a final FINISH; a quarter valid opcodes, a final FINISH and small fields whose
DRAM addresses fall in the program's data buffer (so loads, GEMMs, ALUs and stores really
execute; 2% of their GEMM/ALU loops run up to 2^14 x 2^14 iterations, so the simulator's
iteration limits are exercised). Each runs on a fresh SimDevice whose DRAM holds, in order, a guard page, a 64 KiB data
buffer, the instruction page and a guard page, all filled with random bytes. Counted per flavour:

- crash: any exception other than a ProgramError (e.g. MemoryError, IndexError);
- hang: a run longer than ``--hang-s`` seconds (interrupted by a timer);
- DRAM violation: a guard page or the instruction buffer changed, or a refused run changed the
  data buffer (a refused program must leave DRAM as it was).

Usage: python benchmarks/fuzz_sim.py [--count N] [--seed S] [--hang-s T] [--json OUT]
Exits 1 when any crash, hang or DRAM violation was seen.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from vta.errors import ProgramError
from vta.isa import MEM_OUT, OP_ALU, OP_FINISH, OP_GEMM, OP_STORE, AluInsn, FinishInsn, GemmInsn, MemInsn, get_isa
from vta.sim.device import SimDevice

FLAVOURS = ("random", "random", "valid_opcodes", "small_fields")
DATA_BYTES = 1 << 16


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def _small_program(rng: np.random.Generator, n: int, data_phys: int, elem: dict[int, int]) -> bytes:
    """Valid opcodes, small loop counts and factors, DRAM addresses inside the data buffer."""
    insns = []
    for _ in range(n - 1):
        flags = dict(zip(("pop_prev_dep", "pop_next_dep", "push_prev_dep", "push_next_dep"),
                         (rng.random(4) < 0.1).astype(int).tolist()))  # rare: most flag sets are illegal
        op = int(rng.choice([0, 0, 0, 1, 2, 2, 3, 4, 4]))  # a FINISH in the middle is rare (early_finish)

        def small(hi: int) -> int:
            return int(rng.integers(0, hi))

        legal = rng.random() < 0.9  # mostly well-formed, so the data paths run; sometimes not
        if op in (0, 1):  # LOAD or STORE
            if op == OP_STORE:
                mt = MEM_OUT if legal else small(6)
                pads = dict.fromkeys(("y_pad_0", "y_pad_1", "x_pad_0", "x_pad_1"), 0)
            else:
                mt = int(rng.choice([0, 1, 2, 3])) if legal else small(6)
                pads = dict(y_pad_0=small(2), y_pad_1=small(2), x_pad_0=small(2), x_pad_1=small(2))
            x = small(8)
            insns.append(MemInsn(opcode=op, memory_type=mt, sram_base=small(64),
                                 dram_base=data_phys // elem[mt] + small(DATA_BYTES // 256), y_size=small(4),
                                 x_size=x, x_stride=x + small(3) if legal else small(10), **pads, **flags))
        elif op in (OP_GEMM, OP_ALU):
            bgn = small(4)
            # rarely, loops up to the fields' 14 bits: the simulator's iteration limits and folded ALUs
            n_out, n_in, fac = (1 << 14, 1 << 14, 2) if rng.random() < 0.02 else (4, 4, 4)
            loop = dict(uop_bgn=bgn, uop_end=bgn + small(5) if legal else small(8), iter_out=small(n_out),
                        iter_in=small(n_in), dst_factor_out=small(fac), dst_factor_in=small(fac),
                        src_factor_out=small(fac), src_factor_in=small(fac), reset_reg=small(2))
            if op == OP_GEMM:
                insns.append(GemmInsn(**loop, wgt_factor_out=small(4), wgt_factor_in=small(4), **flags))
            else:
                insns.append(AluInsn(**loop, alu_opcode=small(5), use_imm=small(2), imm=small(64) - 32, **flags))
        else:
            insns.append(FinishInsn(**flags))
    insns.append(FinishInsn())
    return b"".join(i.encode() for i in insns)


def _program(rng: np.random.Generator, flavour: str, data_phys: int, elem: dict[int, int]) -> bytes:
    n = int(rng.integers(1, 17))
    if flavour == "small_fields":
        return _small_program(rng, n, data_phys, elem)
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    if flavour == "valid_opcodes":
        raw[:, 0] = (raw[:, 0] & 0xF8) | rng.integers(0, 5, n, dtype=np.uint8)
        raw[-1] = 0
        raw[-1, 0] = OP_FINISH
    return raw.tobytes()


def run_one(rng: np.random.Generator, flavour: str, hang_s: float) -> tuple[str, float]:
    """Run one random program; the outcome ('ok', an error class, 'crash:<type>', 'hang', 'dram') and seconds."""
    dev = SimDevice()
    guard_lo, data, insns, guard_hi = (dev.dram.alloc(n) for n in (4096, DATA_BYTES, 4096, 4096))
    for buf in (guard_lo, data, insns, guard_hi):
        buf.data[:] = rng.integers(0, 256, buf.nbytes, dtype=np.uint8)
    stream = _program(rng, flavour, data.phys_addr, get_isa(dev.env).elem_bytes)
    insns.data[:len(stream)] = np.frombuffer(stream, np.uint8)
    before = {id(b): b.data.copy() for b in (guard_lo, insns, data, guard_hi)}
    signal.setitimer(signal.ITIMER_REAL, hang_s)
    t = time.perf_counter()
    try:
        dev.run(insns.phys_addr, len(stream) // 16)
        outcome = "ok"
    except ProgramError as e:
        outcome = e.error_class
    except _Hang:
        return "hang", time.perf_counter() - t
    except Exception as e:  # counting every non-ProgramError is the point
        outcome = f"crash:{type(e).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    dt = time.perf_counter() - t
    kept = (guard_lo, insns, guard_hi) if outcome == "ok" else (guard_lo, insns, data, guard_hi)
    if any(not np.array_equal(b.data, before[id(b)]) for b in kept):
        return "dram", dt
    return outcome, dt


def fuzz(count: int, seed: int, hang_s: float) -> dict:
    rng = np.random.default_rng(seed)
    signal.signal(signal.SIGALRM, _alarm)
    rows: dict[str, dict] = {}
    for k in range(count):
        flavour = FLAVOURS[k % len(FLAVOURS)]
        outcome, dt = run_one(rng, flavour, hang_s)
        row = rows.setdefault(flavour, {"programs": 0, "outcomes": Counter(), "max_s": 0.0, "total_s": 0.0,
                                        "first_failure": None})
        row["programs"] += 1
        row["outcomes"][outcome] += 1
        row["total_s"] += dt
        row["max_s"] = max(row["max_s"], dt)
        if row["first_failure"] is None and (outcome in ("hang", "dram") or outcome.startswith("crash")):
            row["first_failure"] = {"program": k, "outcome": outcome}
    for row in rows.values():
        o = row["outcomes"]
        row["crashes"] = sum(v for k, v in o.items() if k.startswith("crash"))
        row["hangs"], row["dram_violations"], row["ran_to_finish"] = o["hang"], o["dram"], o["ok"]
        row["refused"] = row["programs"] - row["crashes"] - row["hangs"] - row["dram_violations"] - o["ok"]
        row["outcomes"] = dict(sorted(o.items()))
    return {"count": count, "seed": seed, "hang_s": hang_s, "flavours": rows,
            "crashes": sum(r["crashes"] for r in rows.values()), "hangs": sum(r["hangs"] for r in rows.values()),
            "dram_violations": sum(r["dram_violations"] for r in rows.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-s", type=float, default=10.0)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "fuzz_sim.json")
    a = ap.parse_args()
    t = time.perf_counter()
    res = fuzz(a.count, a.seed, a.hang_s)
    res["wall_s"] = time.perf_counter() - t
    print(f"{'flavour':14} {'programs':>9} {'finished':>9} {'refused':>8} {'crashes':>8} {'hangs':>6} "
          f"{'dram':>5} {'max_s':>7}")
    for name, r in res["flavours"].items():
        print(f"{name:14} {r['programs']:9} {r['ran_to_finish']:9} {r['refused']:8} {r['crashes']:8} "
              f"{r['hangs']:6} {r['dram_violations']:5} {r['max_s']:7.3f}")
    print(f"total: {res['count']} programs in {res['wall_s']:.0f} s; {res['crashes']} crashes, {res['hangs']} hangs "
          f"(> {a.hang_s:g} s), {res['dram_violations']} DRAM changes outside what a finished run may store")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 1 if res["crashes"] or res["hangs"] or res["dram_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
