"""Token scheduling: FIFO matching, vector clocks, termination defects found without running forever."""

from vta.isa import MEM_INP, MEM_UOP, OP_STORE, DecodedStream, FinishInsn, GemmInsn, MemInsn, encode_stream
from vta.sim.scheduler import schedule


def sched(insns):
    return schedule(DecodedStream(encode_stream(insns)))


def happens_before(s, a, b):
    return s.seq[a] <= s.vc[b, s.module[a]]


def test_double_buffered_tokens_order_only_what_they_must():
    # load0 -> gemm0, load1 -> gemm1; gemm0 frees load1's buffer... classic ping-pong
    insns = [
        MemInsn(memory_type=MEM_INP, push_next_dep=1),             # 0 load A0
        MemInsn(memory_type=MEM_INP, push_next_dep=1),             # 1 load A1
        GemmInsn(pop_prev_dep=1, push_prev_dep=1, iter_out=0),      # 2 gemm on A0
        GemmInsn(pop_prev_dep=1, push_prev_dep=1, iter_out=0),      # 3 gemm on A1
        MemInsn(memory_type=MEM_INP, pop_next_dep=1),               # 4 reload A0 after gemm 2
        MemInsn(memory_type=MEM_INP, pop_next_dep=1),               # 5 reload A1 after gemm 3
        FinishInsn(),
    ]
    s = sched(insns)
    assert s.problem is not None  # loads 4/5 are not ordered before FINISH
    assert happens_before(s, 0, 2) and happens_before(s, 1, 3)
    assert happens_before(s, 2, 4) and happens_before(s, 3, 5)
    assert not happens_before(s, 3, 4)  # reload of A0 need not wait for the gemm on A1
    assert not happens_before(s, 4, 3)


def test_tokens_match_first_in_first_out():
    insns = [
        MemInsn(memory_type=MEM_INP, push_next_dep=1),  # 0
        MemInsn(memory_type=MEM_INP, push_next_dep=1),  # 1
        GemmInsn(pop_prev_dep=1, iter_out=0),            # 2 takes load 0's token
        GemmInsn(pop_prev_dep=1, iter_out=0),            # 3 takes load 1's token
        FinishInsn(),
    ]
    s = sched(insns)
    assert s.problem is None
    assert s.vc[2].tolist() == [1, 1, 0] and s.vc[3].tolist() == [2, 2, 0]
    assert s.order[-1] == 4


def test_store_nop_chain_and_finish_last():
    insns = [
        GemmInsn(iter_out=0, push_next_dep=1),
        MemInsn(opcode=OP_STORE, memory_type=MEM_UOP, pop_prev_dep=1, push_prev_dep=1),
        FinishInsn(pop_next_dep=1),
    ]
    s = sched(insns)
    assert s.problem is None and s.order.tolist() == [0, 1, 2]
    assert happens_before(s, 1, 2)


def test_deadlock_is_reported_not_waited_out():
    s = sched([MemInsn(memory_type=MEM_INP, pop_next_dep=1, push_next_dep=1),
               GemmInsn(pop_prev_dep=1, push_prev_dep=1, iter_out=0), FinishInsn()])
    assert s.problem.error_class == "deadlock" and len(s.order) == 0
    assert "g2l (compute->load)" in str(s.problem)
