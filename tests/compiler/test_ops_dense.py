"""ops.dense: packed dense with its epilogue, the default tiler and the knob checks."""

from __future__ import annotations

import pytest

from tests.compiler.conftest import check_bit_exact, check_compiled_bit_exact
from vta.compiler import lower, te
from vta.compiler.ops import DenseConfig, Epilogue, default_dense_config, dense, dense_packed, schedule_dense_packed
from vta.errors import ScheduleError


@pytest.mark.parametrize(("sizes", "cfg"), [
    ((1, 64, 32), None),
    ((2, 256, 128), None),
    ((3, 48, 64), None),
    ((2, 64, 64), DenseConfig(tile_b=[1, 2], tile_co=[2, 2], tile_ci=[2, 2], oc_nthread=2)),
    ((4, 32, 64), DenseConfig(tile_b=[2, 2], tile_co=[4, 1], tile_ci=[1, 2])),
])
@pytest.mark.parametrize("epilogue", [None, Epilogue(shift=7, relu=True, clip=(0, 100))])
def test_dense_is_bit_exact(rng, sizes, cfg, epilogue):
    func = check_bit_exact(dense(*sizes, config=cfg, epilogue=epilogue), rng)
    if cfg is not None:
        assert ("for vthread" in str(func)) == (cfg.oc_nthread == 2)


def test_tvm_loop_order_loads_weights_for_every_batch_row_and_stays_bit_exact(rng):
    """TVM's dense template puts a tile's batch rows outside the reduction: the published logs measured that."""
    from vta.compiler.build import build
    from vta.sim.perf import estimate
    from vta.sim.predict import program_streams

    cfg = DenseConfig(tile_b=[1, 4], tile_co=[2, 2], tile_ci=[2, 2])
    wgt_bytes = {}
    for per_row in (False, True):
        op = dense(4, 64, 64, config=cfg, loads_per_batch_row=per_row)
        check_compiled_bit_exact(op, rng)
        prog = build(op.schedule, op.args, op.name)
        wgt_bytes[per_row] = sum(estimate(s, prog.env).dram_bytes["wgt"] for s in program_streams(prog))
    assert wgt_bytes[True] == 4 * wgt_bytes[False]


@pytest.mark.slow
def test_default_tiling_compiles_bit_exact(rng):
    """The default tiling of a deep reduction (32 x 64 blocks), chosen by the model, on the simulator."""
    assert default_dense_config((1, 32, 64)).tile_ci == (1, 64)
    check_compiled_bit_exact(dense(1, 1024, 512, epilogue=Epilogue(shift=9)), rng)


def test_default_keeps_small_layers_whole_and_tiles_large_ones():
    assert default_dense_config((1, 4, 4)) == DenseConfig(tile_b=(1, 1), tile_co=(1, 4), tile_ci=(1, 4))
    # 64 x 32 weight blocks overflow the 1024-entry weight SRAM: output tiles of 16 blocks with whole 8 KiB
    # weight rows, two threads so the next tile's rows load during this one's GEMMs.
    assert default_dense_config((1, 64, 32)) == DenseConfig(tile_b=(1, 1), tile_co=(4, 16), tile_ci=(1, 32),
                                                            oc_nthread=2)
    big = default_dense_config((64, 256, 64))
    assert all(n <= d for n, d in zip(big.footprint().values(), (2048, 1024, 2048)))
    op = dense(64, 1024, 4096)
    lower(op.schedule, op.args)


def test_default_avoids_back_to_back_writes_of_one_accumulator_entry():
    cfg = default_dense_config((1, 1, 8))
    assert cfg.tile_ci == (8, 1)


def test_schedule_without_config_uses_the_default():
    data = te.placeholder((1, 4, 1, 16), "int8", "A")
    weight = te.placeholder((2, 4, 16, 16), "int8", "W")
    s = schedule_dense_packed(dense_packed(data, weight))
    assert [st.name for st in s.stages] == ["A", "A.local.inp_buffer", "W", "W.local.wgt_buffer", "dense", "out"]


@pytest.mark.parametrize(("cfg", "message"), [
    (DenseConfig(tile_b=[1, 2], tile_co=[2, 2], tile_ci=[1, 4]), r"^dense: tile_b=\[1, 2\]: 1 x 2 = 2, expected the "
                                                                  r"batch blocks 1$"),
    (DenseConfig(tile_b=[1, 1], tile_co=[1, 2], tile_ci=[1, 4]), r"^dense: tile_co=\[1, 2\]: 1 x 2 = 2, expected the "
                                                                  r"output-channel blocks 4$"),
    (DenseConfig(tile_b=[1, 1], tile_co=[2, 2], tile_ci=[2, 1]), r"^dense: tile_ci=\[2, 1\]: 2 x 1 = 2, expected the "
                                                                  r"input-channel blocks 4$"),
    (DenseConfig(tile_b=[1, 1], tile_co=[1, 4], tile_ci=[1, 4], oc_nthread=2),
     r"^dense: oc_nthread=2: the outer part of tile_co=\[1, 4\] \(1\) is not a multiple of the thread count$"),
])
def test_config_is_checked_against_the_shapes(cfg, message):
    with pytest.raises(ScheduleError, match=message):
        dense(1, 64, 64, config=cfg)


def test_tiles_too_big_for_sram_are_refused_naming_the_knobs():
    cfg = DenseConfig(tile_b=[1, 1], tile_co=[1, 64], tile_ci=[1, 32])
    with pytest.raises(ScheduleError, match=r"^dense: tile_b=\[1, 1\], tile_co=\[1, 64\], tile_ci=\[1, 32\] with 1 "
                                            r"thread\(s\) need 2048 local.wgt_buffer entries, it holds 1024; use "
                                            r"smaller tiles$"):
        dense(1, 512, 1024, config=cfg)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(tile_b=[1], tile_co=[1, 1], tile_ci=[1, 1]), r"^DenseConfig: tile_b=\[1\]: expected \[outer, inner\]"),
    (dict(tile_b=[1, 1], tile_co=[1, -1], tile_ci=[1, 1]), r"^DenseConfig: tile_co=\[1, -1\]: expected"),
    (dict(tile_b=[1, 1], tile_co=[1, 1], tile_ci=[1, 1], oc_nthread=3),
     r"^DenseConfig: oc_nthread=3: expected 1 or 2 virtual threads$"),
])
def test_config_values_are_validated(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        DenseConfig(**kwargs)


def test_shape_and_layout_errors():
    with pytest.raises(ScheduleError, match=r"^dense: in_features=40: expected a positive multiple of 16$"):
        dense(1, 40, 16)
    with pytest.raises(ScheduleError, match=r"^dense: batch=0: expected a positive multiple of 1$"):
        dense(0, 16, 16)
    data = te.placeholder((1, 2, 1, 16), "int8", "A")
    with pytest.raises(ScheduleError, match=r"^dense: data has 2 input blocks, weight expects 3$"):
        dense_packed(data, te.placeholder((1, 3, 16, 16), "int8", "W"))
    with pytest.raises(ScheduleError, match=r"^dense: W must be int8 4-d with innermost \(16, 16\), got int32 "
                                            r"\(1, 2, 16, 16\)$"):
        dense_packed(data, te.placeholder((1, 2, 16, 16), "int32", "W"))


def test_default_is_faster_by_the_full_model_than_the_least_traffic_tiling():
    """4096 -> 4096: the least-traffic tiling streams 1 KiB weight rows that each pay the bus latency."""
    from vta.compiler.build import build
    from vta.sim.predict import predict_program

    least_traffic = DenseConfig(tile_b=(1, 1), tile_co=(1, 256), tile_ci=(64, 4))
    chosen = default_dense_config((1, 256, 256))
    assert chosen.tile_ci[1] * 256 > 1024  # longer weight rows
    times = []
    for cfg in (least_traffic, chosen):
        op = dense(1, 4096, 4096, cfg)
        times.append(predict_program(build(op.schedule, op.args)).seconds)
    assert times[1] < 0.9 * times[0]
