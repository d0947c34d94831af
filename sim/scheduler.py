"""Dependency-token scheduling: one valid execution order plus happens-before vector clocks.

The three modules run their queues in order; a pop waits for the matching push (spec §2.3,
§3.7). Tokens are matched first-in first-out, so which push a pop consumes does not depend
on the interleaving, and the vector clocks computed along any valid order describe every
schedule the hardware could take. That is what lets us refuse deadlocks and early FINISHes
instead of spinning like the reference, and find races without trying schedules.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from vta.errors import DeadlockError, EarlyFinishError, MissingFinishError, ProgramError
from vta.isa import COMPUTE_MODULE, LOAD_MODULE, MODULES, OP_FINISH, STORE_MODULE, DecodedStream

__all__ = ["QUEUE_NAMES", "Schedule", "schedule"]

L2G, G2L, G2S, S2G = range(4)
QUEUE_NAMES = ("l2g (load->compute)", "g2l (compute->load)", "g2s (compute->store)", "s2g (store->compute)")
# Per module: queue popped by pop_prev / pop_next, pushed by push_prev / push_next (None: illegal).
_POPS = {LOAD_MODULE: (None, G2L), COMPUTE_MODULE: (L2G, S2G), STORE_MODULE: (G2S, None)}
_PUSHES = {LOAD_MODULE: (None, L2G), COMPUTE_MODULE: (G2L, G2S), STORE_MODULE: (S2G, None)}


@dataclass(frozen=True)
class Schedule:
    """A valid order and, per instruction, its module sequence number and vector clock.

    Instruction a happens before b exactly when ``seq[a] <= vc[b, module[a]]``.
    """

    order: np.ndarray  # instruction indices in execution order (blocked ones left out)
    seq: np.ndarray  # 1-based position of each instruction in its module's queue
    vc: np.ndarray  # (n, 3) vector clocks
    module: np.ndarray
    problem: ProgramError | None  # deadlock / missing or early FINISH / leftover tokens, raised by check()

    def check(self) -> None:
        """Raise the termination defect, if any; called after the data checks, which take priority."""
        if self.problem is not None:
            raise self.problem


def _queues_of(s: DecodedStream) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Per instruction, the token queues it pops and pushes (flags naming no queue were refused earlier)."""
    mem, module = s.mem, s.module
    pops: list[list[int]] = [[] for _ in range(s.count)]
    pushes: list[list[int]] = [[] for _ in range(s.count)]
    for m in range(3):
        here = module == m
        for table, out, names in ((_POPS, pops, ("pop_prev_dep", "pop_next_dep")),
                                  (_PUSHES, pushes, ("push_prev_dep", "push_next_dep"))):
            for q, name in zip(table[m], names):
                if q is not None:
                    for i in np.flatnonzero(here & (mem[name] > 0)).tolist():
                        out[i].append(q)
    return [tuple(p) for p in pops], [tuple(p) for p in pushes]


def schedule(s: DecodedStream) -> Schedule:
    """Order the stream by tokens, noting (not raising) any termination defect; fields are pre-checked."""
    n = s.count
    finishes = np.flatnonzero(s.opcode == OP_FINISH)
    module = s.module
    queues = [np.flatnonzero(module == m).tolist() for m in range(3)]
    pops, pushes = _queues_of(s)
    tokens: list[deque[tuple[int, int, int]]] = [deque() for _ in range(4)]
    heads, clock = [0, 0, 0], [(0, 0, 0)] * 3
    seq = [0] * n
    vcs: list[tuple[int, int, int]] = [(0, 0, 0)] * n
    order: list[int] = []
    progress = True
    while progress:
        progress = False
        for m in range(3):
            q, head = queues[m], heads[m]
            c0, c1, c2 = clock[m]
            while head < len(q):
                i = q[head]
                p = pops[i]
                if p and not all(tokens[t] for t in p):
                    break
                for t in p:
                    a0, a1, a2 = tokens[t].popleft()
                    c0, c1, c2 = max(c0, a0), max(c1, a1), max(c2, a2)
                head += 1
                if m == 0:
                    c0 = head
                elif m == 1:
                    c1 = head
                else:
                    c2 = head
                c = (c0, c1, c2)
                seq[i], vcs[i] = head, c
                order.append(i)
                for t in pushes[i]:
                    tokens[t].append(c)
                progress = True
            heads[m], clock[m] = head, (c0, c1, c2)
    vc = np.array(vcs, dtype=np.int64).reshape(n, 3)
    problem = _termination_problem(s, queues, heads, tokens, pops, finishes, vc)
    return Schedule(np.asarray(order, dtype=np.int64), np.asarray(seq, dtype=np.int64), vc, module, problem)


def _termination_problem(s, queues, heads, tokens, pops, finishes, vc) -> ProgramError | None:
    if len(finishes) == 0:
        return MissingFinishError(
            f"the stream of {s.count} instruction(s) has no FINISH, so the run can never complete")
    ran_finish = [int(f) for f in finishes if vc[f].any()]  # an executed instruction has a nonzero clock
    blocked = [(m, queues[m][heads[m]]) for m in range(3) if heads[m] < len(queues[m])]
    if blocked:
        m, i = blocked[0]
        waits = " and ".join(QUEUE_NAMES[p] for p in pops[i] if not tokens[p])
        what = f"waits for a token on {waits} that is never pushed"
        if ran_finish:
            return EarlyFinishError(
                f"FINISH (instruction {ran_finish[0]}) runs while instruction {i} ({MODULES[m]}) {what}; "
                "that instruction would never execute", index=ran_finish[0], module="compute")
        return DeadlockError(f"{what}; {sum(len(q) - h for q, h in zip(queues, heads))} instruction(s) can never run",
                            index=i, module=MODULES[m])
    totals = [len(q) for q in queues]
    for f in finishes:
        late = [m for m in range(3) if vc[f, m] < totals[m]]
        if late:
            m = late[0]
            j = queues[m][int(vc[f, m])]
            return EarlyFinishError(
                f"instruction {j} ({MODULES[m]}) is not ordered before FINISH (instruction {int(f)}): no token chain "
                "makes FINISH wait for it, so it can run after the device reports done",
                index=int(f), module="compute")
    left = [(q, len(t)) for q, t in enumerate(tokens) if t]
    if left:
        text = ", ".join(f"{k} on {QUEUE_NAMES[q]}" for q, k in left)
        return DeadlockError(
            f"dependency tokens left over after FINISH: {text}; pushes and pops must balance, otherwise the stale "
            "tokens stay in the hardware FIFOs and release a later run's instructions too early")
    return None
