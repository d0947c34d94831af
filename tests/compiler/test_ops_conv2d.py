"""ops.conv2d: the §7.3 template and its knobs, the default tiler, the ResNet-18 table, bit-exact runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.compiler.conftest import check_bit_exact, check_compiled_bit_exact
from vta.compiler import lower, te
from vta.compiler.ops import (
    Conv2dConfig,
    Conv2dWorkload,
    Epilogue,
    conv2d,
    conv2d_packed,
    default_conv2d_config,
    resnet18,
    schedule_conv2d_packed,
)
from vta.compiler.ops.conv2d_config import conv2d_footprint, conv2d_traffic
from vta.config import get_env
from vta.errors import ScheduleError

FULL = Epilogue(shift=6, relu=True, clip=(0, 127))


def _cfg(h, w, ci, co, oc_t=1, h_t=1):
    return Conv2dConfig(tile_h=h, tile_w=w, tile_ci=ci, tile_co=co, oc_nthread=oc_t, h_nthread=h_t)


@pytest.mark.parametrize(("wl", "cfg"), [
    (Conv2dWorkload("s1p1", 6, 6, 32, 64, 3, 1, 1), _cfg([2, 3], [1, 6], [2, 1], [2, 2], oc_t=2)),
    (Conv2dWorkload("s2p1", 8, 8, 32, 32, 3, 2, 1), _cfg([2, 2], [1, 4], [1, 2], [1, 2], h_t=2)),
    (Conv2dWorkload("s2p0_1x1", 6, 6, 16, 32, 1, 2, 0), _cfg([1, 3], [1, 3], [1, 1], [2, 1], oc_t=2)),
    (Conv2dWorkload("s1p0", 9, 7, 16, 32, 3, 1, 0), _cfg([1, 7], [1, 5], [1, 1], [1, 2])),
    (Conv2dWorkload("s3p2_batch2", 7, 7, 16, 16, 3, 3, 2, batch=2),
     Conv2dConfig(tile_b=[2, 1], tile_h=[1, 3], tile_w=[1, 3], tile_ci=[1, 1], tile_co=[1, 1])),
])
def test_conv2d_is_bit_exact(rng, wl, cfg):
    check_bit_exact(conv2d(wl, cfg, FULL), rng)


@pytest.mark.parametrize("epilogue", [None, Epilogue(shift=5), Epilogue(relu=True), Epilogue(clip=(-20, 20))])
def test_each_epilogue_stage_is_bit_exact(rng, epilogue):
    op = conv2d(Conv2dWorkload("e", 5, 5, 16, 32, 3, 1, 1), _cfg([1, 5], [1, 5], [1, 1], [2, 1], oc_t=2), epilogue)
    check_bit_exact(op, rng)
    alu = [st.name for st in op.schedule.stages if "alu" in st.pragmas.values()]
    assert len(alu) == (0 if epilogue is None else 2 if epilogue.clip else 1)


@pytest.mark.parametrize("wl", [Conv2dWorkload("d3", 6, 6, 32, 64, 3, 1, 1), Conv2dWorkload("d1", 14, 14, 16, 32,
                                                                                           1, 2, 0)])
def test_default_config_is_bit_exact(rng, wl):
    func = check_bit_exact(conv2d(wl, None, FULL), rng)
    assert "for vthread" in str(func)


def test_template_loop_order_and_placement():
    op = conv2d(resnet18.layer("C4"), resnet18.TUNED["C4"], Epilogue(shift=8))
    s = op.schedule
    out = s[op.output]
    names = [(v.name, v.extent) for v in out.leaf_iter_vars]
    assert names == [("i2.outer.inner", 2), ("i0", 1), ("i2.outer.outer", 2), ("i1.outer", 2), ("i3.outer", 1),
                     ("i1.inner", 4), ("i2.inner", 7), ("i3.inner", 28), ("i4", 1), ("i5", 16)]
    assert list(out.binds) == [out.leaf_iter_vars[0]]
    place = {st.name: (st.scope, st.attach and (st.attach[0].name, st.attach[1].name)) for st in s.stages}
    assert place == {"data": ("global", None), "data.local.inp_buffer": ("local.inp_buffer", ("conv", "ko.outer")),
                     "kernel": ("global", None),
                     "kernel.local.wgt_buffer": ("local.wgt_buffer", ("conv", "ko.outer")),
                     "conv": ("local.acc_buffer", ("out", "i3.outer")),
                     "shr": ("local.acc_buffer", ("out", "i3.outer")), "out": ("global", None)}
    conv = next(st for st in s.stages if st.name == "conv")
    assert [v.name for v in conv.leaf_iter_vars] == ["b", "ko.outer", "ko.inner", "j", "dj", "di", "c", "i", "bi",
                                                     "cj", "ki"]


def test_padded_data_goes_to_the_input_buffer_and_epilogue_to_the_accumulator():
    op = conv2d(resnet18.layer("C2"), resnet18.TUNED["C2"], FULL)
    scopes = {st.name: st.scope for st in op.schedule.stages}
    assert scopes["data_pad"] == "local.inp_buffer"
    assert [scopes[n] for n in ("shr", "relu", "clip_hi", "clip_lo")] == ["local.acc_buffer"] * 4
    assert "data.local.inp_buffer" not in scopes


@pytest.mark.parametrize("name", list(resnet18.RESNET18))
def test_resnet18_tuned_and_default_configs_lower(name):
    wl = resnet18.layer(name)
    default = default_conv2d_config(wl)
    for cfg in (resnet18.TUNED[name], default):
        op = conv2d(wl, cfg, FULL)
        lower(op.schedule, op.args)
        assert [t.shape for t in op.args] == [wl.data_shape, wl.kernel_shape, wl.out_shape]
    env = get_env()
    depth = {"local.inp_buffer": env.INP_BUFF_DEPTH, "local.wgt_buffer": env.WGT_BUFF_DEPTH,
             "local.acc_buffer": env.ACC_BUFF_DEPTH}
    assert all(n <= depth[s] for s, n in conv2d_footprint(wl, default).items())
    # The tiler keeps a virtual thread, rule (d), and never moves more bytes than the published knobs.
    assert default.threads == 2 and default.tile_h[1] > 2 and default.tile_w[1] > 2
    assert conv2d_traffic(wl, default) <= conv2d_traffic(wl, resnet18.TUNED[name])


def test_tiler_reproduces_most_published_configurations():
    same = [n for n, wl in resnet18.RESNET18.items() if default_conv2d_config(wl) == resnet18.TUNED[n]]
    assert same == ["C2", "C6", "C8", "C9", "C10", "C11"]
    c5 = default_conv2d_config(resnet18.layer("C5"))
    tuned = resnet18.TUNED["C5"]
    assert (c5.tile_h, c5.tile_w, c5.tile_ci, c5.tile_co) == (tuned.tile_h, tuned.tile_w, tuned.tile_ci, tuned.tile_co)


def test_tiler_takes_whole_small_axes_and_threads_only_when_legal():
    cfg = default_conv2d_config(Conv2dWorkload("tiny", 2, 2, 16, 16, 1, 1, 0))
    assert cfg == Conv2dConfig(tile_h=(1, 2), tile_w=(1, 2), tile_ci=(1, 1), tile_co=(1, 1))
    schedule_conv2d_packed(conv2d_packed(te.placeholder((1, 1, 2, 2, 1, 16), "int8", "d"),
                                         te.placeholder((1, 1, 1, 1, 16, 16), "int8", "k")))


def test_tiler_refuses_a_kernel_whose_weights_overflow():
    with pytest.raises(ScheduleError, match=r"^conv2d big: no tiling fits the SRAMs: even a one-element tile of one "
                                            r"channel block with one thread needs \{'local.inp_buffer': 1089, "
                                            r"'local.wgt_buffer': 1089, "):
        default_conv2d_config(Conv2dWorkload("big", 40, 40, 16, 16, 33, 1, 0))


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(tile_h=[7, 8, 1]), r"^Conv2dConfig: tile_h=\[7, 8, 1\]: expected \[outer, inner\], two positive integers$"),
    (dict(tile_w=[0, 56]), r"^Conv2dConfig: tile_w=\[0, 56\]: expected \[outer, inner\]"),
    (dict(tile_ci=(4, 1.0)), r"^Conv2dConfig: tile_ci=\(4, 1.0\): expected"),
    (dict(oc_nthread=4), r"^Conv2dConfig: oc_nthread=4: expected 1 or 2 virtual threads$"),
    (dict(h_nthread=True), r"^Conv2dConfig: h_nthread=True: expected 1 or 2 virtual threads$"),
])
def test_config_values_are_validated(kwargs, message):
    knobs = dict(tile_h=[7, 8], tile_w=[1, 56], tile_ci=[4, 1], tile_co=[2, 2]) | kwargs
    with pytest.raises(ScheduleError, match=message):
        Conv2dConfig(**knobs)


@pytest.mark.parametrize(("change", "message"), [
    (dict(tile_h=[7, 9]), r"^conv2d C2: tile_h=\[7, 9\]: 7 x 9 = 63, expected the output height 56$"),
    (dict(tile_w=[2, 56]), r"^conv2d C2: tile_w=\[2, 56\]: 2 x 56 = 112, expected the output width 56$"),
    (dict(tile_ci=[2, 1]), r"^conv2d C2: tile_ci=\[2, 1\]: 2 x 1 = 2, expected the input-channel blocks 4$"),
    (dict(tile_co=[1, 2]), r"^conv2d C2: tile_co=\[1, 2\]: 1 x 2 = 2, expected the output-channel blocks 4$"),
    (dict(tile_b=[1, 2]), r"^conv2d C2: tile_b=\[1, 2\]: 1 x 2 = 2, expected the batch blocks 1$"),
    (dict(tile_co=[1, 4]), r"^conv2d C2: oc_nthread=2: the outer part of tile_co=\[1, 4\] \(1\) is not a multiple "
                           r"of the thread count$"),
    (dict(h_nthread=2), r"^conv2d C2: h_nthread=2: the outer part of tile_h=\[7, 8\] \(7\) is not a multiple"),
    (dict(tile_h=[1, 56]), r"^conv2d C2: tile_h, tile_w, tile_ci = \[1, 56\], \[1, 56\], \[4, 1\] with 2 virtual "
                           r"thread\(s\) need 6728 local.inp_buffer entries, it holds 2048 \(INP_BUFF_DEPTH\); use "
                           r"smaller tiles or fewer threads$"),
    (dict(tile_ci=[1, 4], tile_co=[2, 2]), r"^conv2d C2: tile_h, tile_w, tile_ci = \[7, 8\], \[1, 56\], \[1, 4\] "
                                           r"with 2 virtual thread\(s\) need 4640 local.inp_buffer"),
])
def test_config_is_checked_against_the_workload(change, message):
    tuned = resnet18.TUNED["C2"]
    knobs = {k: getattr(tuned, k) for k in ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co", "oc_nthread",
                                            "h_nthread")} | change
    with pytest.raises(ScheduleError, match=message):
        conv2d(resnet18.layer("C2"), Conv2dConfig(**knobs))


def test_weight_and_accumulator_capacity_name_their_knobs():
    wide = Conv2dWorkload("wide", 4, 4, 1024, 512, 1, 1, 0)
    with pytest.raises(ScheduleError, match=r"^conv2d wide: tile_ci, tile_co = \[1, 64\], \[1, 32\] with 1 virtual "
                                            r"thread\(s\) need 2048 local.wgt_buffer entries, it holds 1024 "
                                            r"\(WGT_BUFF_DEPTH\)"):
        conv2d(wide, _cfg([1, 4], [1, 4], [1, 64], [1, 32]))
    deep = Conv2dWorkload("deep", 14, 14, 16, 256, 1, 1, 0)
    with pytest.raises(ScheduleError, match=r"^conv2d deep: tile_h, tile_w, tile_co = \[1, 14\], \[1, 14\], "
                                            r"\[1, 16\] with 1 virtual thread\(s\) need 3136 local.acc_buffer "
                                            r"entries, it holds 2048 \(ACC_BUFF_DEPTH\)"):
        conv2d(deep, _cfg([1, 14], [1, 14], [1, 1], [1, 16]))


@pytest.mark.parametrize(("args", "message"), [
    (("w", 8, 8, 24, 16, 3, 1, 1), r"^conv2d w: in_channels=24 is not a multiple of 16; zero-pad it first$"),
    (("w", 8, 8, 16, 16, 11, 1, 1), r"^conv2d w: a 11x11 kernel does not fit the 8x8 input padded by 1$"),
    (("w", 8, 8, 16, 16, 3, 0, 1), r"^conv2d w: stride=0: expected an integer >= 1$"),
    (("w", 8, 8, 16, 16, 3, 1, -1), r"^conv2d w: pad=-1: expected an integer >= 0$"),
])
def test_workload_errors(args, message):
    with pytest.raises(ScheduleError, match=message):
        assert Conv2dWorkload(*args).kernel_shape


def test_compute_checks_layouts():
    data = te.placeholder((1, 1, 8, 8, 1, 16), "int8", "data")
    with pytest.raises(ScheduleError, match=r"^conv2d conv2d: data must be int8 NCHW1n16c \(6-d, innermost "
                                            r"\(1, 16\)\), got int32 \(1, 1, 8, 8, 1, 16\)$"):
        conv2d_packed(te.placeholder((1, 1, 8, 8, 1, 16), "int32", "d32"), te.placeholder((1, 1, 3, 3, 16, 16),
                                                                                          "int8", "k"))
    with pytest.raises(ScheduleError, match=r"^conv2d conv2d: data has 1 input-channel blocks, kernel expects 2$"):
        conv2d_packed(data, te.placeholder((1, 2, 3, 3, 16, 16), "int8", "k"))
    with pytest.raises(ScheduleError, match=r"^conv2d conv2d: kernel is 3x1; only square kernels$"):
        conv2d_packed(data, te.placeholder((1, 1, 3, 1, 16, 16), "int8", "k"))
    with pytest.raises(ScheduleError, match=r"^conv2d conv2d: kernel must be int8 OIHW16o16i"):
        conv2d_packed(data, te.placeholder((1, 1, 3, 3, 16, 8), "int8", "k"))


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(shift=16), r"^Epilogue: shift=16: expected an integer in \[0, 15\]"),
    (dict(shift=True), r"^Epilogue: shift=True: expected an integer in \[0, 15\]"),
    (dict(clip=(5, 1)), r"^Epilogue: clip=\(5, 1\): expected lo <= hi, both in \[-32768, 32767\]"),
    (dict(clip=(0, 40000)), r"^Epilogue: clip=\(0, 40000\): expected lo <= hi"),
    (dict(clip=(0,)), r"^Epilogue: clip=\(0,\): expected two integers$"),
])
def test_epilogue_errors(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        Epilogue(**kwargs)


def test_resnet18_table():
    assert list(resnet18.RESNET18) == [f"C{i}" for i in range(2, 12)]
    assert list(resnet18.TUNED) == list(resnet18.RESNET18)
    c3 = resnet18.layer("C3")
    assert (c3.h, c3.w, c3.in_channels, c3.out_channels, c3.kernel, c3.stride, c3.pad) == (56, 56, 64, 128, 3, 2, 1)
    assert c3.out_shape == (1, 8, 28, 28, 1, 16) and c3.ops == 2 * 128 * 28 * 28 * 64 * 9
    data, kernel = resnet18.random_inputs("C10", np.random.default_rng(1))
    assert data.dtype == kernel.dtype == np.int8
    assert data.shape == (1, 16, 14, 14, 1, 16) and kernel.shape == (32, 16, 1, 1, 16, 16)
    with pytest.raises(ScheduleError, match=r"^ResNet-18 has no VTA layer 'C1'; layers: C2, C3, .*, C11$"):
        resnet18.layer("C1")


def _batch2(name):
    return dataclasses.replace(resnet18.layer(name), batch=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(resnet18.RESNET18))
def test_resnet18_layer_tuned_batch2_compiles_bit_exact(rng, name):
    """Code generation and the simulator on whole layers for two images (the tuned knobs, the batch as an outer
    loop), run twice in one runtime with fresh inputs, as an inference loop would."""
    cfg = dataclasses.replace(resnet18.TUNED[name], tile_b=(2, 1))
    check_compiled_bit_exact(conv2d(_batch2(name), cfg, Epilogue(shift=8, relu=True, clip=(0, 127))), rng, runs=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["C3", "C4", "C5", "C7"])
def test_resnet18_layer_default_batch2_compiles_bit_exact(rng, name):
    """The layers where the tiler's choice differs from the published one."""
    wl = _batch2(name)
    cfg = default_conv2d_config(wl)
    assert cfg != dataclasses.replace(resnet18.TUNED[name], tile_b=cfg.tile_b)
    check_compiled_bit_exact(conv2d(wl, cfg, Epilogue(shift=8)), rng)


# Inception-v3 layers with prime output extents (channels padded to blocks of 16).
INCEPTION = {"Conv2d_1a": Conv2dWorkload("Conv2d_1a", 299, 299, 16, 32, 3, 2, 0),
             "Conv2d_3b": Conv2dWorkload("Conv2d_3b", 73, 73, 64, 80, 1, 1, 0),
             "Conv2d_4a": Conv2dWorkload("Conv2d_4a", 73, 73, 80, 192, 3, 1, 0)}


@pytest.mark.parametrize("name", list(INCEPTION))
def test_tiler_tiles_prime_extents_with_thin_tiles(name):
    """149, 73 and 71 output rows leave only 1-row or whole-axis tiles; the whole axis overflows the accumulator."""
    from vta.compiler.build import build

    wl = INCEPTION[name]
    cfg = default_conv2d_config(wl)
    cfg.check(wl)
    assert cfg.tile_h[1] == 1 and cfg.tile_w[1] == wl.out_w
    op = conv2d(wl, cfg, FULL)
    assert build(op.schedule, op.args, name).summary()["gemm_uops"] == wl.ops // 2 // 256


def test_thin_tiles_run_bit_exact_and_lint_clean(tmp_path):
    """A prime 47x47 output whose whole-axis tile overflows the accumulator: 1-row tiles, bit-exact, no divergence."""
    from vta.compiler.build import build
    from vta.runtime import Runtime
    from vta.sim.lint import lint_vector
    from vta.sim.vector import load_vector

    wl = Conv2dWorkload("prime", 49, 49, 16, 16, 3, 1, 0)
    cfg = default_conv2d_config(wl)
    assert cfg.tile_h[1] == 1
    op = conv2d(wl, cfg, FULL)
    inputs = op.random_inputs(np.random.default_rng(3))
    out = op.empty_output()
    with Runtime("sim") as rt:
        build(op.schedule, op.args, "prime").run(*inputs, out, runtime=rt, export_to=tmp_path / "v")
    np.testing.assert_array_equal(out, op.reference(*inputs))
    linted = lint_vector(load_vector(tmp_path / "v"))
    assert linted.error is None and linted.result.divergences == ()


def test_tiles_never_lie_wholly_in_the_padding(rng):
    """1x1 conv with pad 8: a 5-row tile of the 20 output rows would read only padding; the tiler avoids it,
    and an explicit configuration that does it is refused by the check, naming the rows."""
    wl = Conv2dWorkload("pad8", 4, 4, 16, 1024, 1, 1, 8)
    cfg = default_conv2d_config(wl)
    op = conv2d(wl, cfg, FULL)
    lower(op.schedule, op.args)
    small = Conv2dWorkload("pad8s", 4, 4, 16, 16, 1, 1, 8)
    check_bit_exact(conv2d(small, None, FULL), rng)
    with pytest.raises(ScheduleError, match=r"^conv2d pad8s: tile_h=\[4, 5\]: output 0\.\.4 read\(s\) only the zero "
                                            r"padding \(pad 8\)"):
        _cfg([4, 5], [1, 20], [1, 1], [1, 1]).check(small)
