"""Search strategies propose only valid, unmeasured configurations; learned models rank; transfer warm-starts."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.compiler.tune_helpers import small_measured
from vta.compiler.tune import TuneError
from vta.compiler.tune.cost_model import MLPModel, XGBModel, create_cost_model
from vta.compiler.tune.features import FEATURE_NAMES, space_features
from vta.compiler.tune.measure import ModelMeasurer, SimMeasurer
from vta.compiler.tune.task import layer_tasks
from vta.compiler.tune.tuner import TransferData, Tuner, anneal, neighbours, select_diverse


@pytest.fixture(scope="module")
def measured():
    """SMALL's whole filtered space measured once by the model; tuners then read the memo."""
    task, measurer, results = small_measured()
    return task, measurer, {r.index: r.seconds for r in results}


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("strategy", ["random", "grid", "xgb", "mlp"])
def test_strategies_propose_each_valid_configuration_at_most_once(measured, strategy):
    task, measurer, seconds = measured
    result = Tuner(task, measurer, strategy, seed=1, batch=4).run(100)
    picked = [r.index for r in result.trials]
    assert sorted(picked) == sorted(seconds)  # capped at the filtered space, no repeats, nothing invalid
    if strategy == "grid":
        assert picked == sorted(picked)
    curve = result.best_gops_curve()
    assert curve == sorted(curve) and curve[-1] == pytest.approx(task.ops / min(seconds.values()) / 1e9)


@pytest.mark.parametrize("model", [XGBModel, MLPModel])
def test_learned_models_rank_the_configurations_they_were_fit_on(measured, model):
    task, _, seconds = measured
    idx = list(seconds)
    x = space_features(task.space, idx)
    y = np.array([min(seconds.values()) / seconds[i] for i in idx])
    m = model(seed=0)
    m.fit(x, y, np.zeros(len(y), dtype=np.int64))
    assert x.shape[1] == len(FEATURE_NAMES)
    assert _spearman(m.predict(x), y) > 0.8


def test_transfer_warm_starts_the_first_batch(measured):
    """A model trained on a finished task proposes that task's optimum before measuring anything."""
    task, measurer, seconds = measured
    prior = TransferData()
    prior.add(Tuner(task, measurer, "grid").run(len(seconds)))
    best = min(seconds, key=seconds.get)
    first = Tuner(task, measurer, "xgb", seed=3, batch=4, transfer=prior, epsilon=0.0).run(4)
    assert best in [r.index for r in first.trials]


def test_anneal_and_diverse_selection(measured):
    task, _, seconds = measured
    near = neighbours(task)
    valid = set(seconds)
    assert all(set(v.tolist()) <= valid for v in near.values())
    scores = {i: -s for i, s in seconds.items()}
    exclude = {min(seconds, key=seconds.get)}
    found = anneal(scores, near, np.random.default_rng(0), exclude, keep=5)
    assert found and not (set(found) & exclude) and set(found) <= valid
    picked = select_diverse(task, sorted(valid), 3, min_distance=2)
    values = [task.space.values(i) for i in picked]
    assert all(sum(a[k] != b[k] for k in a) >= 2 for n, a in enumerate(values) for b in values[n + 1:])


def test_bad_arguments_and_missing_xgboost_are_clear_errors(measured, monkeypatch):
    task, measurer, _ = measured
    with pytest.raises(TuneError, match=r"^unknown cost model 'svm'; choices: random, grid, xgb, mlp$"):
        Tuner(task, measurer, "svm")
    with pytest.raises(TuneError, match=r"^trials=0: expected at least 1$"):
        Tuner(task, measurer, "random").run(0)
    with pytest.raises(TuneError, match=r"^unknown cost model 'svm'; learned models: xgb, mlp$"):
        create_cost_model("svm")
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(TuneError, match=r'^the tree-based cost model needs XGBoost: pip install "\.\[tune\]" from '
                                        r"the pynq-vta checkout$"):
        XGBModel()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["C9", "C11"])
def test_simulator_as_measurer_finds_the_same_best_configuration(name):
    """Every output checked against numpy, and the same trials and best as with the model alone."""
    (task,) = layer_tasks([name])
    model = Tuner(task, ModelMeasurer(), "xgb", seed=0).run(12)
    sim_measurer = SimMeasurer()
    try:
        sim = Tuner(task, sim_measurer, "xgb", seed=0).run(12)
    finally:
        sim_measurer.close()
    assert all(r.ok for r in sim.trials)
    assert [r.index for r in sim.trials] == [r.index for r in model.trials]
    assert sim.best.index == model.best.index
