"""The search: random and grid baselines, and model-guided search with a learned cost model.

Model-guided rounds (AutoTVM's XGBTuner loop): fit the cost model on every measurement so far
(plus, for transfer, on measurements of earlier tasks), run simulated annealing over the
filtered knob space scored by the model, take a batch of the best candidates that differ from
each other in at least two knobs (diversity), with a small share of random picks (exploration),
measure the batch, repeat. Only configurations the validity filter keeps are ever proposed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vta.compiler.tune.cost_model import CostModel, create_cost_model
from vta.compiler.tune.errors import TuneError
from vta.compiler.tune.features import space_features
from vta.compiler.tune.measure import Measurer, MeasureResult
from vta.compiler.tune.task import Task

__all__ = ["STRATEGIES", "TransferData", "TuneResult", "Tuner", "anneal", "select_diverse"]

STRATEGIES = ("random", "grid", "xgb", "mlp")


@dataclass
class TuneResult:
    """Every trial of one task in order; the best is the fastest error-free one."""

    task: Task
    strategy: str
    trials: list[MeasureResult] = field(default_factory=list)

    @property
    def best(self) -> MeasureResult | None:
        ok = [r for r in self.trials if r.ok]
        return min(ok, key=lambda r: r.seconds) if ok else None  # type: ignore[arg-type, return-value]

    def best_gops_curve(self) -> list[float]:
        """Best-so-far GOPS after each trial (0 until the first error-free one)."""
        curve, best = [], 0.0
        for r in self.trials:
            best = max(best, r.gops(self.task.ops))
            curve.append(best)
        return curve


@dataclass
class TransferData:
    """Measurements of finished tasks (features, normalised throughput, task id) that warm-start the next."""

    x: list[np.ndarray] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)

    def add(self, result: TuneResult) -> None:
        x, y = _training_rows(result.task, result.trials)
        if len(y):
            self.x.append(x)
            self.y.append(y)
            self.groups.append(np.full(len(y), len(self.groups) + 1))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.x), np.concatenate(self.y), np.concatenate(self.groups)

    def __bool__(self) -> bool:
        return bool(self.y)


def _training_rows(task: Task, trials: list[MeasureResult]) -> tuple[np.ndarray, np.ndarray]:
    """Features and throughput relative to the best trial (errors count as 0, the worst)."""
    gops = np.array([r.gops(task.ops) for r in trials])
    if not len(trials) or gops.max() <= 0:
        return np.zeros((0, 0)), np.zeros(0)
    return space_features(task.space, [r.index for r in trials]), gops / gops.max()


def neighbours(task: Task) -> dict[int, np.ndarray]:
    """For each valid configuration, the valid ones that differ from it in exactly one knob."""
    space = task.space
    valid = set(space.valid.tolist())
    radix = np.cumprod([1] + [len(k.options) for k in space.knobs[:-1]])
    out = {}
    for i in valid:
        near = []
        for knob, r in zip(space.knobs, radix.tolist()):
            pos = (i // r) % len(knob.options)
            near += [j for j in (i + (k - pos) * r for k in range(len(knob.options)) if k != pos) if j in valid]
        out[i] = np.array(near, dtype=np.int64)
    return out


def anneal(scores: dict[int, float], near: dict[int, np.ndarray], rng: np.random.Generator, exclude: set[int],
           keep: int, points: int = 32, steps: int = 40) -> list[int]:
    """Simulated annealing over the knob space scored by the model: the ``keep`` best unmeasured configurations seen.

    ``points`` chains start at random valid configurations and walk to a neighbour (one knob
    changed) when it scores better, or worse with probability exp(delta / T), T falling linearly
    to 0; scores are ranks scaled to [0, 1], so T is independent of the model's scale.
    """
    keys = np.array(list(scores))
    rank = np.argsort(np.argsort([scores[k] for k in keys])) / max(len(keys) - 1, 1)
    score = dict(zip(keys.tolist(), rank.tolist()))
    cur = rng.choice(keys, min(points, len(keys)), replace=False).tolist()
    seen = set(cur)
    for step in range(steps):
        temp = 1.0 - step / steps
        for c, i in enumerate(cur):
            if not len(near[i]):
                continue
            j = int(rng.choice(near[i]))
            delta = score[j] - score[i]
            if delta > 0 or (temp > 0 and rng.random() < np.exp(delta / (0.1 * temp))):
                cur[c] = j
                seen.add(j)
    found = sorted((i for i in seen if i not in exclude), key=lambda i: -score[i])
    return found[:keep]


def select_diverse(task: Task, ranked: list[int], batch: int, min_distance: int = 2) -> list[int]:
    """The best-ranked configurations that differ pairwise in at least ``min_distance`` knobs (then the rest)."""
    values = {i: task.space.values(i) for i in ranked}
    picked: list[int] = []
    for i in ranked:
        if len(picked) == batch:
            break
        if all(sum(values[i][k] != values[j][k] for k in values[i]) >= min_distance for j in picked):
            picked.append(i)
    picked += [i for i in ranked if i not in picked][:batch - len(picked)]
    return picked


class Tuner:
    """Tune one task with a strategy (``random``, ``grid``, ``xgb``, ``mlp``) on a measurer.

    Examples
    --------
    >>> from vta.compiler.tune.task import layer_tasks                # doctest: +SKIP
    >>> result = Tuner(layer_tasks(["C8"])[0], ModelMeasurer(), "xgb").run(32)
    >>> result.best.seconds
    """

    def __init__(self, task: Task, measurer: Measurer, strategy: str, seed: int = 0, batch: int = 4,
                 transfer: TransferData | None = None, epsilon: float = 0.1):
        if strategy not in STRATEGIES:
            raise TuneError(f"unknown cost model {strategy!r}; choices: {', '.join(STRATEGIES)}")
        if batch < 1:
            raise TuneError(f"batch={batch!r}: expected at least 1 configuration per round")
        self.task, self.measurer, self.strategy = task, measurer, strategy
        self.rng = np.random.default_rng(seed)
        self.batch, self.transfer, self.epsilon = batch, transfer, epsilon
        self.model: CostModel | None = create_cost_model(strategy, seed) if strategy in ("xgb", "mlp") else None
        self.valid = task.space.require_valid()

    def run(self, trials: int, callback: Callable[[TuneResult], None] | None = None) -> TuneResult:
        """Measure up to ``trials`` configurations (fewer when the filtered space is smaller)."""
        if trials < 1:
            raise TuneError(f"trials={trials!r}: expected at least 1")
        result = TuneResult(self.task, self.strategy)
        order = self._fixed_order()
        measured: set[int] = set()
        while len(result.trials) < min(trials, len(self.valid)):
            want = min(self.batch, trials - len(result.trials), len(self.valid) - len(measured))
            if order is not None:
                picks = order[len(result.trials):len(result.trials) + want]
            else:
                picks = self._propose(result, measured, want)
            result.trials += self.measurer.measure(self.task, picks)
            measured.update(picks)
            if callback is not None:
                callback(result)
        return result

    def _fixed_order(self) -> list[int] | None:
        if self.strategy == "grid":
            return self.valid.tolist()  # AutoTVM's grid search: index order
        if self.strategy == "random":
            return self.rng.permutation(self.valid).tolist()
        return None

    def _propose(self, result: TuneResult, measured: set[int], want: int) -> list[int]:
        unmeasured = [i for i in self.valid.tolist() if i not in measured]
        scores = self._scores(result)
        if scores is None:
            return self.rng.choice(unmeasured, want, replace=False).tolist()
        if not hasattr(self, "_near"):
            self._near = neighbours(self.task)
        ranked = anneal(scores, self._near, self.rng, measured, keep=4 * want)
        ranked += [i for i in sorted(unmeasured, key=lambda i: -scores[i]) if i not in ranked][:4 * want]
        picks = select_diverse(self.task, ranked, want)
        for k in range(len(picks)):
            if self.rng.random() < self.epsilon:
                left = [i for i in unmeasured if i not in picks]
                if left:
                    picks[k] = int(self.rng.choice(left))
        return picks

    def _scores(self, result: TuneResult) -> dict[int, float] | None:
        xs, ys, gs = [], [], []
        if self.transfer:
            x, y, g = self.transfer.arrays()
            xs, ys, gs = [x], [y], [g]
        x, y = _training_rows(self.task, result.trials)
        if len(y) >= 2:
            xs, ys, gs = [*xs, x], [*ys, y], [*gs, np.zeros(len(y), dtype=np.int64)]
        if not ys:
            return None
        assert self.model is not None
        self.model.fit(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs))
        if not hasattr(self, "_features"):
            self._features = space_features(self.task.space, self.valid)
        return dict(zip(self.valid.tolist(), self.model.predict(self._features).tolist()))
