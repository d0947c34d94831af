"""The discrete-event engine of the cycle model: fetch and the three module queues in time.

Fetch issues instructions in order into three command queues of bounded depth; each module
takes its commands in order and starts one once its pops are matched (k-th pop = k-th push on
a FIFO) and it is free; a push into a full token FIFO waits for the consumer's pop (spec §3.1,
§3.7). Costs come from :mod:`vta.sim.perf`; this file only orders the events.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import numpy as np

from vta.errors import DeadlockError
from vta.isa import COMPUTE_MODULE, LOAD_MODULE, STORE_MODULE, DecodedStream

if TYPE_CHECKING:
    from vta.sim.perf import HwTiming

__all__ = ["TRACKS", "Events"]

TRACKS = ("fetch", "load", "compute", "store")
L2G, G2L, G2S, S2G = range(4)
# (queue of the prev flag, queue of the next flag) -> the queues used; -1 means the flag is clear.
_FLAG_QUEUES = {(a, b): tuple(q for q in (a, b) if q >= 0) for a in range(-1, 4) for b in range(-1, 4)}


def _queues(s: DecodedStream) -> tuple[list[int], ...]:
    """Token queue each instruction pops/pushes through its prev and next flags (-1: none)."""
    mod, m = s.module, s.mem
    prev = np.where(mod == COMPUTE_MODULE, L2G, np.where(mod == STORE_MODULE, G2S, -1))
    nxt = np.where(mod == COMPUTE_MODULE, S2G, np.where(mod == LOAD_MODULE, G2L, -1))
    push_prev = np.where(mod == COMPUTE_MODULE, G2L, np.where(mod == STORE_MODULE, S2G, -1))
    push_next = np.where(mod == COMPUTE_MODULE, G2S, np.where(mod == LOAD_MODULE, L2G, -1))
    return tuple(np.where(m[k] > 0, q, -1).tolist() for k, q in (
        ("pop_prev_dep", prev), ("pop_next_dep", nxt), ("push_prev_dep", push_prev), ("push_next_dep", push_next)))


class _Bus:
    """The one AXI port every DMA shares: busy intervals of the bus, disjoint and sorted.

    A transfer takes the bus's free cycles from its start on until it has had its cycles
    (AXI arbitration interleaves masters burst by burst, so a transfer fills the gaps others
    leave); total bus time is conserved whatever order the modules are simulated in.
    """

    def __init__(self) -> None:
        self.s: list[int] = []
        self.e: list[int] = []

    def fill(self, t: int, need: int) -> tuple[int, list[tuple[int, int]]]:
        """When a transfer of ``need`` bus cycles wanting the bus from ``t`` ends, and the pieces it takes."""
        s, e = self.s, self.e
        i = bisect.bisect_right(e, t)
        pieces = []
        while need > 0:
            if i < len(s) and s[i] <= t:
                t = e[i]
                i += 1
                continue
            take = need if i == len(s) else min(need, s[i] - t)
            pieces.append((t, t + take))
            need -= take
            t += take
        return t, pieces

    def take(self, pieces: list[tuple[int, int]]) -> None:
        s, e = self.s, self.e
        for a, b in pieces:
            i = bisect.bisect_left(s, a)
            if i > 0 and e[i - 1] == a:
                i -= 1
                e[i] = b
            else:
                s.insert(i, a)
                e.insert(i, b)
            if i + 1 < len(s) and s[i + 1] == e[i]:
                e[i] = e[i + 1]
                del s[i + 1], e[i + 1]


class Events:
    """Discrete-event run of fetch and the three module queues; times are cycles.

    ``xfer[i]`` > 0: instruction i spends that many of its ``dur[i]`` cycles on the shared bus
    (only when ``hw.shared_bus``); its other cycles do not need the bus.
    """

    def __init__(self, s: DecodedStream, dur: list[int], hw: HwTiming, bus: int, xfer: list[int] | None = None):
        self.hw, self.n, self.dur = hw, s.count, dur
        self.xfer = xfer if xfer is not None and hw.shared_bus else None
        self.bus = _Bus()
        self.mod = s.module.tolist()
        self.pp, self.pn, self.up, self.un = _queues(s)
        self.pops = [_FLAG_QUEUES[k] for k in zip(self.pp, self.pn)]
        self.pushes = [_FLAG_QUEUES[k] for k in zip(self.up, self.un)]
        self.queues: list[list[int]] = [np.flatnonzero(s.module == m).tolist() for m in range(3)]
        qpos = np.zeros(self.n, dtype=np.int64)
        for q in self.queues:
            qpos[q] = np.arange(len(q))
        self.qpos = qpos.tolist()
        n = self.n
        self.fetch_start, self.fetch_end = [0] * n, [0] * n
        self.issue, self.start, self.end = [0] * n, [0] * n, [0] * n
        self.fi, self.ft, self.fetch_stall = 0, hw.fetch_overhead, 0
        self.fetch_ii = -(-16 // bus)  # a 128-bit instruction is this many bus beats
        self.heads, self.free = [0, 0, 0], [0, 0, 0]
        self.busy, self.token_stall, self.starved = [0, 0, 0], [0, 0, 0], [0, 0, 0]
        self.pushed: list[list[int]] = [[], [], [], []]
        self.popped: list[list[int]] = [[], [], [], []]

    def run(self) -> None:
        """Advance fetch and the modules in turn; a module is retried only once what blocked it changed."""
        lists = (self.pushed, self.popped)
        blocked: list[tuple[int, int, int] | None] = [None, None, None]
        while True:
            before = self.fi + sum(self.heads)
            if self.fi < self.n:
                self._fetch()
            for m in range(3):
                b = blocked[m]
                if b is None or (self.fi > b[2] if b[0] < 0 else len(lists[b[0]][b[1]]) > b[2]):
                    blocked[m] = self._module(m)
            if self.fi + sum(self.heads) == before:
                break
        if self.fi < self.n or any(h < len(q) for h, q in zip(self.heads, self.queues)):
            raise self._deadlock()

    def _fetch(self) -> None:
        """Fetch instructions in order until one finds its command queue full of unissued commands."""
        mod, qpos, queues, heads, issue = self.mod, self.qpos, self.queues, self.heads, self.issue
        depth, ii, fi, ft = self.hw.cmd_queue_depth, self.fetch_ii, self.fi, self.ft
        while fi < self.n:
            m, k = mod[fi], qpos[fi]
            t = ft
            if k >= depth:
                if heads[m] <= k - depth:
                    break  # the command `depth` places earlier has not left the queue yet
                free_at = issue[queues[m][k - depth]]
                if free_at > t:
                    self.fetch_stall += free_at - t
                    t = free_at
            self.fetch_start[fi] = t
            ft = t + ii
            self.fetch_end[fi] = ft
            fi += 1
        self.fi, self.ft = fi, ft

    def _module(self, m: int) -> tuple[int, int, int] | None:
        """Run module ``m``'s queue until its head lacks its command, a token, or room for a push.

        Returns what it waits for: (-1, 0, k) fetch past k, (0, q, k) more than k pushes on q,
        (1, q, k) more than k pops from q; (-1, 0, n) once the queue is done (never true again).
        """
        q, h, free = self.queues[m], self.heads[m], self.free[m]
        pushed, popped, depth, lat = self.pushed, self.popped, self.hw.token_queue_depth, self.hw.token_latency
        fetch_end, fi, dur, pops_of, pushes_of = self.fetch_end, self.fi, self.dur, self.pops, self.pushes
        busy = stall = starved = 0
        wait = (-1, 0, self.n)
        while h < len(q):
            i = q[h]
            if i >= fi:
                wait = (-1, 0, i)
                break
            wait = None
            issue = st = free if free > fetch_end[i] else fetch_end[i]
            pops, pushes = pops_of[i], pushes_of[i]
            for a in pops:
                k = len(popped[a])
                if k >= len(pushed[a]):
                    wait = (0, a, k)
                    break
                if pushed[a][k] > st:
                    st = pushed[a][k]
            if wait:
                break
            pieces = None
            if self.xfer is not None and self.xfer[i] > 0:
                own = dur[i] - self.xfer[i]
                end, pieces = self.bus.fill(st + own, self.xfer[i])
                done = end
            else:
                end = done = st + dur[i]
            for u in pushes:
                k = len(pushed[u]) - depth
                if k >= 0:
                    if len(popped[u]) <= k:
                        wait = (1, u, k)  # a full token FIFO whose freeing pop is not known yet
                        break
                    if popped[u][k] > done:
                        done = popped[u][k]
            if wait:
                break
            if pieces:
                self.bus.take(pieces)
            for u in pushes:
                pushed[u].append(done + lat)
            for a in pops:
                popped[a].append(st)
            starved += issue - free
            stall += st - issue + done - end
            busy += end - st
            self.issue[i], self.start[i], self.end[i] = issue, st, end
            free = done
            h += 1
        if h == len(q):
            wait = (-1, 0, self.n)
        self.heads[m], self.free[m] = h, free
        self.busy[m] += busy
        self.token_stall[m] += stall
        self.starved[m] += starved
        return wait

    def _deadlock(self) -> DeadlockError:
        names = ("l2g (load->compute)", "g2l (compute->load)", "g2s (compute->store)", "s2g (store->compute)")
        for m, (h, q) in enumerate(zip(self.heads, self.queues)):
            if h < len(q) and q[h] < self.fi:
                i = q[h]
                waits = [names[a] for a in self.pops[i] if len(self.popped[a]) >= len(self.pushed[a])]
                what = f"waits for a token on {' and '.join(waits)}" if waits else "waits for room in a full token FIFO"
                if self.fi < self.n:
                    stuck = TRACKS[self.mod[self.fi] + 1]
                    what += (f", while fetch is stuck at instruction {self.fi} because the {stuck} command queue "
                             f"({self.hw.cmd_queue_depth} deep) is full: the hardware would hang")
                return DeadlockError(what, index=i, module=TRACKS[m + 1])
        return DeadlockError(f"fetch is stuck at instruction {self.fi}: its command queue is full and never drains",
                             index=self.fi, module="fetch")
