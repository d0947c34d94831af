"""Dependency tokens from data hazards: the minimal pushes and pops that keep a program correct.

Load, compute and store run concurrently and in order (spec §3.1); only tokens order them
(§3.7). For each operation this pass finds the latest operation of a neighbouring module
that it conflicts with on SRAM (read after write, write after read, write after write) and,
unless an earlier token already covers it, has that operation push a token which this one
pops. Tokens are FIFOs, so the producers chosen for one queue must increase in program order,
which taking "the latest conflicting one, if newer than the last synchronised" guarantees.
Everything else may overlap: with double-buffered tiles (virtual threads) one context's loads
run while the other's GEMMs do, which is the point of latency hiding (spec §7.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vta.compiler.codegen.emit import Scope
from vta.compiler.codegen.ops import COMPUTE, LOAD, MODULE_NAMES, STORE, VtaOp
from vta.compiler.codegen.sram import depths
from vta.config import Environment
from vta.errors import LoweringError

__all__ = ["inject_scope_tokens", "inject_tokens"]

_NEIGHBOURS = {LOAD: (COMPUTE,), COMPUTE: (LOAD, STORE), STORE: (COMPUTE,)}


def inject_tokens(ops: Sequence[VtaOp], env: Environment) -> None:
    """Set ``pops``/``pushes`` on ``ops`` (in place) so every cross-module hazard is ordered."""
    depth = depths(env)
    # last_write[module][scope][entry] / last_read: index of the newest op of that module touching it
    last_write = {m: {s: np.full(d, -1) for s, d in depth.items()} for m in (LOAD, COMPUTE, STORE)}
    last_read = {m: {s: np.full(d, -1) for s, d in depth.items()} for m in (LOAD, COMPUTE, STORE)}
    synced = {(a, b): -1 for a in _NEIGHBOURS for b in _NEIGHBOURS[a]}
    for i, op in enumerate(ops):
        for other in _NEIGHBOURS[op.module]:
            newest = -1
            for f in op.reads:
                newest = max(newest, int(last_write[other][f.scope][f.lo:f.hi].max(initial=-1)))
            for f in op.writes:
                newest = max(newest, int(last_write[other][f.scope][f.lo:f.hi].max(initial=-1)),
                             int(last_read[other][f.scope][f.lo:f.hi].max(initial=-1)))
            if newest > synced[other, op.module]:
                ops[newest].pushes.add(op.module)
                op.pops.add(other)
                synced[other, op.module] = newest
        for f in op.reads:
            last_read[op.module][f.scope][f.lo:f.hi] = i
        for f in op.writes:
            last_write[op.module][f.scope][f.lo:f.hi] = i


def inject_scope_tokens(scopes: Sequence[Scope]) -> None:
    """TVM's tokens: in each virtual thread's program order, one from every coproc scope to the next
    whenever the module changes, whether or not the two share data.

    TVM's CoProcSync places them on the single-thread program (loop-carried ones included, which
    unrolled are just the next scope) before InjectVirtualThread replicates each scope with its
    tokens, so every thread is a chain and the threads overlap only with each other.
    Raises LoweringError when operations outside the virtual threads mix with threaded ones (TVM
    would pop one token for several pushes) or consecutive scopes are load and store (no token
    queue joins them).
    """
    threaded = {sc.thread for sc in scopes}
    if () in threaded and len(threaded) > 1:
        raise LoweringError("like_tvm: operations outside the virtual threads mix with threaded ones; TVM's "
                            "tokens for such a program are not defined here (move the virtual thread outermost)")
    last: dict[tuple[int, ...], VtaOp] = {}
    for sc in scopes:
        prev = last.get(sc.thread)
        first = sc.ops[0]
        if prev is not None and prev.module != first.module:
            if first.module not in _NEIGHBOURS[prev.module]:
                raise LoweringError(f"like_tvm: a {MODULE_NAMES[prev.module]} scope is followed by a "
                                    f"{MODULE_NAMES[first.module]} scope; VTA has no token queue between them")
            prev.pushes.add(first.module)
            first.pops.add(prev.module)
        last[sc.thread] = sc.ops[-1]
