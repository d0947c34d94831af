"""codegen: DMA folding, micro-op kernels, SRAM placement and tokens, on hand-built loop nests."""

from __future__ import annotations

import pytest

from vta.compiler.codegen import generate
from vta.compiler.codegen.deps import inject_tokens
from vta.compiler.codegen.kernels import MAX_KERNEL_UOPS, kernel_ops
from vta.compiler.codegen.ops import COMPUTE, LOAD, STORE, Footprint, KernelOp, LoadOp, StoreOp
from vta.compiler.expr import BinOp, Cast, Cmp, Const, IterVar, Select
from vta.compiler.lower.ir import Allocate, Buffer, BufferLoad, For, LoweredFunc, Pragma, Seq, Store
from vta.errors import LoweringError

INP, WGT, ACC = "local.inp_buffer", "local.wgt_buffer", "local.acc_buffer"


def _v(name: str, n: int) -> IterVar:
    return IterVar(name, n)


def _nest(loops, body):
    for v in reversed(loops):
        body = For(v, v.extent, body)
    return body


def _func(params, body) -> LoweredFunc:
    return LoweredFunc("f", tuple(params), body)


def _copy_in(src: Buffer, tile: Buffer, value=None, src_idx=None):
    """dma_copy of a (rows, cols, 1, 16) tensor into a same-shaped tile, indices given per dim."""
    i, j, k = _v("i", tile.shape[0]), _v("j", tile.shape[1]), _v("k", 16)
    idx = (i, j, Const(0), k)
    load = BufferLoad(src, src_idx(i, j, k) if src_idx else idx, src.dtype)
    return Pragma("dma_copy", _nest([i, j, k], Store(tile, idx, load if value is None else value(i, j, load))))


def _store_out(tile: Buffer, out: Buffer):
    i, j, k = _v("si", tile.shape[0]), _v("sj", tile.shape[1]), _v("sk", 16)
    idx = (i, j, Const(0), k)
    return Pragma("dma_copy", _nest([i, j, k], Store(out, idx, Cast(BufferLoad(tile, idx, "int32"), "int8"))))


def test_row_copy_folds_to_one_2d_load_and_store(env):
    src, out = Buffer("x", (4, 8, 1, 16), "int32"), Buffer("y", (4, 8, 1, 16), "int8")
    tile = Buffer("t", (4, 8, 1, 16), "int32", ACC)
    ops = generate(_func([src, out], Allocate(tile, Seq((_copy_in(src, tile), _store_out(tile, out))))), env)
    load, store = ops
    assert isinstance(load, LoadOp) and (load.y_size, load.x_size, load.memory_type) == (1, 32, 3)
    assert isinstance(store, StoreOp) and (store.y_size, store.x_size) == (1, 32)
    assert load.pushes == {STORE} and store.pops == {COMPUTE}


def test_sub_window_becomes_rows_with_a_stride_and_pads_from_the_condition(env):
    src = Buffer("x", (10, 12, 1, 16), "int8")
    tile = Buffer("t", (6, 7, 1, 16), "int8", INP)

    def padded(i, j, load):  # rows -1..4 and cols -1..5 of x: one zero row and column before
        cond = Cmp("&&", Cmp(">=", i, Const(1)), Cmp(">=", j, Const(1)))
        return Select(cond, load, Const(0, "int8"), "int8")

    body = _copy_in(src, tile, padded, lambda i, j, k: (BinOp("-", i, Const(1), "int32"),
                                                        BinOp("-", j, Const(1), "int32"), Const(0), k))
    (load,) = generate(_func([src], Allocate(tile, body)), env)
    assert (load.y_size, load.x_size, load.x_stride, load.pads, load.elem_offset) == (5, 6, 12, (1, 0, 1, 0), 0)
    assert load.writes == (Footprint("inp", 0, 42),)


@pytest.mark.parametrize(("make", "message"), [
    (lambda src, tile, out: Allocate(tile, Store(out, (Const(0),) * 4, Const(0, "int8"))),
     r"^f: y\[\.\.\.\] = 0 has no dma_copy or alu pragma and would have to run on the CPU"),
    (lambda src, tile, out: Allocate(tile, Pragma("prefetch", _copy_in(src, tile))),
     r"^f: unknown pragma 'prefetch' \(VTA knows dma_copy and alu\)$"),
])
def test_statements_vta_cannot_run_are_refused(make, message, env):
    src, out = Buffer("x", (2, 2, 1, 16), "int32"), Buffer("y", (2, 2, 1, 16), "int8")
    tile = Buffer("t", (2, 2, 1, 16), "int32", ACC)
    with pytest.raises(LoweringError, match=message):
        generate(_func([src, out], make(src, tile, out)), env)


def test_weight_padding_is_refused_because_the_bitstream_ignores_it(env):
    src = Buffer("w", (2, 3, 16, 16), "int8")
    tile = Buffer("t", (2, 3, 16, 16), "int8", WGT)
    i, j, a, b = _v("i", 2), _v("j", 3), _v("a", 16), _v("b", 16)
    value = Select(Cmp(">=", j, Const(1)), BufferLoad(src, (i, j, a, b), "int8"), Const(0, "int8"), "int8")
    body = Pragma("dma_copy", _nest([i, j, a, b], Store(tile, (i, j, a, b), value)))
    with pytest.raises(LoweringError, match=r"^dma_copy into t: the Pynq bitstream ignores padding on weight loads"):
        generate(_func([src], Allocate(tile, body)), env)


def test_pads_beyond_the_4_bit_fields_are_refused(env):
    src = Buffer("x", (2, 40, 1, 16), "int8")
    tile = Buffer("t", (2, 40, 1, 16), "int8", INP)
    body = _copy_in(src, tile, lambda i, j, load: Select(Cmp(">=", j, Const(20)), load, Const(0, "int8"), "int8"))
    with pytest.raises(LoweringError, match=r"padding \(0, 0, 20, 0\) .* exceeds the 4-bit pad fields"):
        generate(_func([src], Allocate(tile, body)), env)


def test_a_tile_entirely_in_the_padding_is_refused(env):
    src = Buffer("x", (2, 4, 1, 16), "int8")
    tile = Buffer("t", (2, 4, 1, 16), "int8", INP)
    body = _copy_in(src, tile, lambda i, j, load: Select(Cmp("<", i, Const(0)), load, Const(0, "int8"), "int8"))
    with pytest.raises(LoweringError, match=r"^dma_copy into t: the tile lies entirely in the padding"):
        generate(_func([src], Allocate(tile, body)), env)


def test_a_scattered_sram_side_is_refused(env):
    src = Buffer("x", (2, 4, 1, 16), "int8")
    tile = Buffer("t", (4, 2, 1, 16), "int8", INP)
    i, j, k = _v("i", 2), _v("j", 4), _v("k", 16)
    body = Pragma("dma_copy", _nest([i, j, k], Store(tile, (j, i, Const(0), k),
                                                      BufferLoad(src, (i, j, Const(0), k), "int8"))))
    with pytest.raises(LoweringError, match=r"the SRAM side is not one contiguous run of entries in loop order "
                                            r"\(loop j steps 2 entries, expected 1\)"):
        generate(_func([src], Allocate(tile, body)), env)


def test_sram_overflow_names_the_scope_and_the_need(env):
    src = Buffer("x", (64, 40, 1, 16), "int32")
    tile = Buffer("t", (64, 40, 1, 16), "int32", ACC)
    with pytest.raises(LoweringError, match=r"^f: the acc tiles need 2560 SRAM entries at once but the buffer "
                                            r"holds 2048; use smaller tiles or fewer virtual threads$"):
        generate(_func([src], Allocate(tile, _copy_in(src, tile))), env)


def test_intermediate_dram_tensors_must_be_parameters(env):
    src, tmp = Buffer("x", (2, 2, 1, 16), "int32"), Buffer("tmp", (2, 2, 1, 16), "int32")
    tile = Buffer("t", (2, 2, 1, 16), "int32", ACC)
    with pytest.raises(LoweringError, match=r"tmp is an intermediate tensor in DRAM; make it a parameter"):
        generate(_func([src], Allocate(tmp, Allocate(tile, _copy_in(tmp, tile)))), env)


def _alu_func(value_of, env, shape=(2, 8, 1, 16)):
    src, out = Buffer("x", shape, "int32"), Buffer("y", shape, "int8")
    a, b = Buffer("a", shape, "int32", ACC), Buffer("b", shape, "int32", ACC)
    i, j, k = _v("ai", shape[0]), _v("aj", shape[1]), _v("ak", 16)
    idx = (i, j, Const(0), k)
    alu = Pragma("alu", _nest([i, j, k], Store(b, idx, value_of(BufferLoad(a, idx, "int32"), i, j, k))))
    body = Allocate(a, Allocate(b, Seq((_copy_in(src, a), alu, _store_out(b, out)))))
    return generate(_func([src, out], body), env)


def test_alu_in_place_immediates_and_left_shift(env):
    ops = _alu_func(lambda a, *_: BinOp("<<", a, Const(3), "int32"), env)
    (alu,) = [op for op in ops if isinstance(op, KernelOp)]
    assert (alu.gemm, alu.opcode, alu.use_imm, alu.imm, alu.loops, alu.uops) == (False, 3, True, -3, ((16, 1, 1),),
                                                                              ((0, 0),))


def test_alu_left_shift_by_a_tensor_is_refused(env):
    with pytest.raises(LoweringError, match=r"^alu on b: the ALU shifts left only by a constant"):
        _alu_func(lambda a, *_: BinOp("<<", a, a, "int32"), env)


def test_alu_copy_from_other_entries_is_a_reset_and_an_add(env):
    src, out = Buffer("x", (2, 8, 1, 16), "int32"), Buffer("y", (1, 4, 1, 16), "int8")
    a, b = Buffer("a", (2, 8, 1, 16), "int32", ACC), Buffer("b", (1, 4, 1, 16), "int32", ACC)
    i, j, k = _v("ai", 1), _v("aj", 4), _v("ak", 16)
    pick = BufferLoad(a, (Const(1), BinOp("*", j, Const(2), "int32"), Const(0), k), "int32")  # a[1, 2j]
    alu = Pragma("alu", _nest([i, j, k], Store(b, (i, j, Const(0), k), pick)))
    ops = generate(_func([src, out], Allocate(a, Allocate(b, Seq((_copy_in(src, a), alu, _store_out(b, out)))))),
                   env)
    reset, add = [op for op in ops if isinstance(op, KernelOp)]
    assert reset.gemm and reset.reset and reset.loops == ((4, 1, 0, 0),) and reset.uops == ((16, 0, 0),)
    assert not add.gemm and add.opcode == 2 and add.loops == ((4, 1, 2),) and add.uops == ((16, 8),)


def test_kernel_folds_two_loops_and_merges_contiguous_ones():
    v = [_v(n, e) for n, e in (("a", 3), ("b", 4), ("c", 2), ("d", 5))]
    # a and b chain contiguously (dst 4 and 1); c and d unroll into micro-ops, the destination changing
    forms = [{v[0]: 4, v[1]: 1, v[2]: 12, v[3]: 24, None: 0}, {v[3]: 1, v[2]: 5, None: 0}, {v[3]: 2, None: 0}]
    (op,) = kernel_ops([(x, x.extent) for x in v], forms, ["acc", "inp", "wgt"], gemm=True, where="t")
    assert op.loops == ((12, 1, 0, 0), (2, 12, 5, 0))
    assert op.uops == tuple((24 * d, d, 2 * d) for d in range(5))


def test_a_reduction_that_would_rewrite_one_accumulator_back_to_back_moves_outward():
    v = [_v(n, e) for n, e in (("a", 3), ("b", 4), ("c", 2), ("r", 5))]
    # r is a reduction (dst factor 0): innermost it would write one entry five times in a row, which
    # the HLS pipeline can get wrong (spec §3.3); as the outer hardware loop it is harmless
    forms = [{v[0]: 4, v[1]: 1, v[2]: 12, None: 0}, {v[3]: 1, v[2]: 5, None: 0}, {v[3]: 2, None: 0}]
    (op,) = kernel_ops([(x, x.extent) for x in v], forms, ["acc", "inp", "wgt"], gemm=True, where="t")
    assert op.loops == ((5, 0, 1, 2), (12, 1, 0, 0))
    assert op.uops == ((0, 0, 0), (12, 5, 0))


def test_kernel_with_too_many_uops_keeps_its_outer_loops_on_the_host():
    v = [_v("o", 3), _v("p", 2), _v("q", 2), _v("u", MAX_KERNEL_UOPS + 1)]
    forms = [{v[3]: 1, v[0]: 7, v[1]: 3, v[2]: 11, None: 0}, {None: 0}, {None: 0}]
    ops = kernel_ops([(x, x.extent) for x in v], forms, ["acc"], gemm=True, where="t", reset=True)
    # o and p stay on the host; q and u become the two hardware loops over one micro-op
    assert len(ops) == 3 * 2 and all(len(op.uops) == 1 for op in ops)
    assert ops[1].uops == ((3, 0, 0),) and ops[1].loops == ((2, 11, 0, 0), (MAX_KERNEL_UOPS + 1, 1, 0, 0))


def test_tokens_let_a_second_buffer_load_while_the_first_is_computed(env):
    def load(lo):
        return LoadOp(LOAD, (), (Footprint("inp", lo, lo + 4),))

    def gemm(lo):
        return KernelOp(COMPUTE, (Footprint("acc", 0, 1), Footprint("inp", lo, lo + 4)), (Footprint("acc", 0, 1),))

    ops = [load(0), gemm(0), load(4), gemm(4), load(0), gemm(0), load(4), gemm(4)]
    inject_tokens(ops, env)
    assert [sorted(op.pops) for op in ops] == [[], [LOAD], [], [LOAD], [COMPUTE], [LOAD], [COMPUTE], [LOAD]]
    assert [sorted(op.pushes) for op in ops] == [[COMPUTE], [LOAD], [COMPUTE], [LOAD], [COMPUTE], [], [COMPUTE], []]


def test_an_int8_accumulator_load_warns_that_the_bitstream_lacks_acc_8bit(env):
    src, out = Buffer("x", (2, 2, 1, 16), "int8"), Buffer("y", (2, 2, 1, 16), "int8")
    tile = Buffer("t", (2, 2, 1, 16), "int32", ACC)
    body = Allocate(tile, Seq((_copy_in(src, tile, lambda i, j, load: Cast(load, "int32")), _store_out(tile, out))))
    with pytest.warns(UserWarning, match=r"^dma_copy into t: an int8 tensor loaded into the accumulator is LOAD "
                                         r"ACC_8BIT, which the Pynq bitstream does not implement"):
        load, _ = generate(_func([src, out], body), env)
    assert load.memory_type == 5


def test_a_shift_outside_the_portable_range_warns(env):
    with pytest.warns(UserWarning, match=r"^alu on b: shift by 16 is outside -15\.\.15; the Pynq bitstream uses a "
                                         r"5-bit signed amount"):
        _alu_func(lambda a, *_: BinOp(">>", a, Const(16), "int32"), env)
