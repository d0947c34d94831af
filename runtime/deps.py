"""The instruction list and its dependency tokens, as the reference ``InsnQueue`` builds them (spec §4.5).

Instructions are kept as 128-bit Python ints. Each stage (1 load, 2 compute, 3 store) has two
pending-pop bits that the next instruction created for that stage absorbs; a push is merged into
the last instruction when it belongs to the pushing stage and lacks that bit, otherwise it
becomes a NOP. The drain before FINISH and the force-serial rewrite are spec §4.6.
"""

from __future__ import annotations

from vta.config import Environment
from vta.errors import IllegalDepFlagError
from vta.isa import DEP_MASK, MEM_INP, MEM_UOP, OP_LOAD, OP_STORE, POP_NEXT, POP_PREV, PUSH_NEXT, PUSH_PREV, get_isa

__all__ = ["COMPUTE", "LOAD", "NONE", "STORE", "InsnBuffer", "qid_pair"]

NONE, LOAD, COMPUTE, STORE = 0, 1, 2, 3
STAGE_NAMES = {LOAD: "load", COMPUTE: "compute", STORE: "store"}
# Token FIFO of each legal (from, to) pair (spec §2.3).
FIFOS = {(LOAD, COMPUTE): "l2g", (COMPUTE, LOAD): "g2l", (COMPUTE, STORE): "g2s", (STORE, COMPUTE): "s2g"}


def qid_pair(from_qid: int, to_qid: int, what: str) -> tuple[int, int]:
    """Validate a (from, to) queue pair; load<->store has no token FIFO (reference CHECK)."""
    if (from_qid, to_qid) not in FIFOS:
        raise IllegalDepFlagError(
            f"{what}({from_qid!r}, {to_qid!r}): queue ids are 1 load, 2 compute, 3 store and tokens flow only "
            "between neighbours (1<->2, 2<->3)", module=STAGE_NAMES.get(to_qid if what == "dep_pop" else from_qid))
    return from_qid, to_qid


class InsnBuffer:
    """Instruction words of one synchronize window plus the pending-pop and token bookkeeping."""

    def __init__(self, env: Environment):
        mem = get_isa(env).mem
        # NOP encodings (reference PushNoop): LOAD for load/compute, STORE for store; memory type
        # INP on the load stage and UOP otherwise; every address and size field 0.
        self.nops = {LOAD: mem.pack({"opcode": OP_LOAD, "memory_type": MEM_INP}),
                     COMPUTE: mem.pack({"opcode": OP_LOAD, "memory_type": MEM_UOP}),
                     STORE: mem.pack({"opcode": OP_STORE, "memory_type": MEM_UOP})}
        self.reset()

    def reset(self) -> None:
        self.words: list[int] = []
        self.stages: list[int] = []  # GetPipelineStage: NONE for a LOAD with x_size 0
        self.stages_all: list[int] = []  # GetPipelineStageAll: NOP loads by memory type
        self.pending_prev = [0, 0, 0, 0]
        self.pending_next = [0, 0, 0, 0]
        self.balance = dict.fromkeys(FIFOS, 0)  # pushes minus pops requested in this window

    def __len__(self) -> int:
        return len(self.words)

    def create(self, stage: int, word: int, merge_stage: int) -> None:
        """Append an instruction of ``stage`` that absorbs the stage's pending pops."""
        if self.pending_prev[stage] or self.pending_next[stage]:
            word |= (POP_PREV if self.pending_prev[stage] else 0) | (POP_NEXT if self.pending_next[stage] else 0)
            self.pending_prev[stage] = self.pending_next[stage] = 0
        self.words.append(word)
        self.stages.append(merge_stage)
        self.stages_all.append(stage)

    def push_noop(self, stage: int, flags: int) -> None:
        self.words.append(self.nops[stage] | flags)
        self.stages.append(STORE if stage == STORE else NONE)
        self.stages_all.append(stage)

    def commit_pending_pop(self, stage: int) -> None:
        if self.pending_prev[stage] or self.pending_next[stage]:
            flags = (POP_PREV if self.pending_prev[stage] else 0) | (POP_NEXT if self.pending_next[stage] else 0)
            self.pending_prev[stage] = self.pending_next[stage] = 0
            self.push_noop(stage, flags)

    def dep_pop(self, frm: int, to: int) -> None:
        """Queue ``to`` pops a token from ``frm`` at its next instruction (a second pop commits a NOP first)."""
        pending = self.pending_prev if frm < to else self.pending_next
        if pending[to]:
            self.commit_pending_pop(to)
        pending[to] = 1
        self.balance[frm, to] -= 1

    def dep_push(self, frm: int, to: int) -> None:
        """Queue ``frm`` pushes a token to ``to``: merged into its last instruction if possible, else a NOP."""
        self.commit_pending_pop(frm)
        self.balance[frm, to] += 1
        bit = PUSH_NEXT if frm < to else PUSH_PREV
        if self.words and self.stages[-1] == frm and not self.words[-1] & bit:
            self.words[-1] |= bit
            return
        self.push_noop(frm, bit)

    def drain(self) -> None:
        """The reference's end of program: last store and last load each push, a compute NOP pops both."""
        self.dep_push(STORE, COMPUTE)
        self.dep_push(LOAD, COMPUTE)
        self.dep_pop(STORE, COMPUTE)
        self.dep_pop(LOAD, COMPUTE)
        self.commit_pending_pop(COMPUTE)

    def rewrite_serial(self) -> None:
        """VTA_DEBUG_FORCE_SERIAL: chain every stage change with a token pair, then order FINISH last.

        Unlike the reference, the flags of the first and last instruction and any pending pops are
        cleared first too, so the rewrite alone decides every token and the result always balances.
        """
        self.pending_prev, self.pending_next = [0, 0, 0, 0], [0, 0, 0, 0]
        words, stages = [w & ~DEP_MASK for w in self.words], self.stages_all
        for i in range(1, len(words)):
            pair = (stages[i - 1], stages[i])
            if pair in ((LOAD, COMPUTE), (COMPUTE, STORE)):
                words[i - 1] |= PUSH_NEXT
                words[i] |= POP_PREV
            elif pair in ((COMPUTE, LOAD), (STORE, COMPUTE)):
                words[i - 1] |= PUSH_PREV
                words[i] |= POP_NEXT
        self.words = words
        if len(words) >= 2 and stages[-1] == STORE:
            self.words[-1] |= PUSH_PREV
            self.dep_pop(STORE, COMPUTE)
            self.commit_pending_pop(COMPUTE)
        self.dep_push(COMPUTE, LOAD)
        self.dep_pop(LOAD, COMPUTE)
        self.dep_pop(COMPUTE, LOAD)
        self.commit_pending_pop(LOAD)
        self.dep_push(LOAD, COMPUTE)
        self.commit_pending_pop(COMPUTE)

    def outstanding(self) -> list[tuple[int, int, int]]:
        """``(from, to, count)`` of tokens pushed in this window that nothing in it pops."""
        return [(frm, to, n) for (frm, to), n in self.balance.items() if n > 0]

    def pending(self) -> list[str]:
        return [f"{STAGE_NAMES[s]} {kind}" for s in (LOAD, COMPUTE, STORE)
                for kind, bits in (("pop_prev", self.pending_prev), ("pop_next", self.pending_next)) if bits[s]]

    def to_bytes(self) -> bytes:
        return b"".join([w.to_bytes(16, "little") for w in self.words])  # a list joins faster than a generator
