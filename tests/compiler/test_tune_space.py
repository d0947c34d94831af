"""Knob spaces index as AutoTVM does, and the validity filter agrees with the compiler."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.tune_helpers import SMALL
from tests.compiler.tune_helpers import small_measured as shared_small_measured
from vta.compiler.ops import Conv2dWorkload
from vta.compiler.ops.resnet18 import RESNET18, TUNED
from vta.compiler.tune import Conv2dSpace, DenseSpace, DenseWorkload, TuneError
from vta.compiler.tune.measure import ModelMeasurer
from vta.compiler.tune.task import Task, conv2d_task, dense_task
from vta.errors import ScheduleError


@pytest.fixture(scope="module")
def small_measured():
    """Every configuration of SMALL the filter keeps, measured by the model (compiled each)."""
    return shared_small_measured()


def test_index_matches_autotvm_config_index():
    # config.index of the first line of shared/calibration/autotvm_sample.log (ResNet-50 1x1 s2 layer)
    space = Conv2dSpace(Conv2dWorkload("r50", 14, 14, 1024, 2048, 1, 2, 0))
    knobs = {"tile_b": [1, 1], "tile_h": [1, 7], "tile_w": [1, 7], "tile_ci": [64, 1], "tile_co": [8, 16],
             "oc_nthread": 2, "h_nthread": 1}
    assert space.index(knobs) == 339
    assert space.values(339) == {k: tuple(v) if isinstance(v, list) else v for k, v in knobs.items()}
    dense = DenseSpace(DenseWorkload("d", 1, 8, 16))  # its dense line: index 4
    assert dense.index({"tile_b": [1, 1], "tile_ci": [1, 16], "tile_co": [8, 1], "oc_nthread": 1}) == 4


def test_index_and_values_round_trip_over_a_whole_space():
    space = Conv2dSpace(RESNET18["C11"])
    assert len(space) == 1 * 2 * 2 * 6 * 6 * 2 * 2
    assert all(space.index(space.values(i)) == i for i in space)
    assert space.index({**space.values(5), "tile_h": [-1, 7]}) == space.index(space.values(5))


def test_unknown_knob_value_and_out_of_range_index_are_errors():
    space = Conv2dSpace(SMALL)
    with pytest.raises(TuneError, match=r"^knob tile_h=\[1, 5\] is not in its space: options "):
        space.index({**space.values(0), "tile_h": [1, 5]})
    with pytest.raises(TuneError, match=r"^small: configuration index 9999 outside the space of \d+$"):
        space.values(9999)
    with pytest.raises(TuneError, match=r"^small: knob\(s\) h_nthread missing"):
        space.index({k: v for k, v in space.values(0).items() if k != "h_nthread"})


def test_every_tuned_resnet18_config_passes_and_sizes_shrink():
    for name, wl in RESNET18.items():
        space = Conv2dSpace(wl)
        assert space.reason(space.index(TUNED[name].__dict__)) is None
        assert 0 < len(space.valid) < len(space)
        assert space.describe().startswith(f"{name} (conv2d_packed.vta): {len(space)} configurations, "
                                           f"{len(space.valid)} pass the validity filter")


def test_every_configuration_that_passes_compiles_whole_small_conv_space(small_measured):
    _, _, results = small_measured
    assert len(results) >= 8
    assert [r.error for r in results if not r.ok] == []


def test_every_configuration_that_passes_compiles_whole_small_dense_space():
    task = dense_task("d", 1, 4, 4)
    results = ModelMeasurer().measure(task, task.space.valid.tolist())
    assert len(results) >= 6 and all(r.ok for r in results)


def test_rejected_configurations_either_fail_to_compile_or_lose_to_the_filtered_optimum(small_measured):
    """Capacity/divisibility rejections are the compiler's own ScheduleError; the write-after-write
    rejections compile (to many more instructions) but never beat the best configuration kept."""
    task, measurer, kept = small_measured
    space = task.space
    rejected = [i for i in space if space.reason(i) is not None]
    capacity = [i for i in rejected if "rewrite an accumulator" not in space.reason(i)]
    waw = [i for i in rejected if i not in capacity]
    assert capacity and waw
    for i in capacity:
        with pytest.raises(ScheduleError):
            task.operator(i)
    best = min(r.seconds for r in kept)
    sample = np.random.default_rng(0).choice(waw, 3, replace=False).tolist()
    lost = measurer.measure(task, sample)
    assert all(r.ok and r.seconds > best for r in lost)


def test_space_that_filters_to_empty_is_a_clear_error():
    space = Conv2dSpace(Conv2dWorkload("huge_kernel", 64, 64, 16, 16, 33, 1, 0))
    with pytest.raises(TuneError, match=r"^huge_kernel: none of the \d+ configurations of conv2d_packed.vta fits "
                                        r"the hardware \(first reason: .*local.wgt_buffer"):
        space.require_valid()


def test_dense_filter_rejects_short_reduction_accumulators():
    space = DenseSpace(DenseWorkload("d", 1, 2, 4))
    bad = space.index({"tile_b": [1, 1], "tile_ci": [1, 4], "tile_co": [2, 1], "oc_nthread": 1})
    assert "rewrites an entry within three micro-ops" in space.reason(bad)
    assert isinstance(Task(space, conv2d_task(SMALL).epilogue).name, str)
