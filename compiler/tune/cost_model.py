"""Cost models that rank configurations from their features: gradient-boosted trees and a small MLP.

Both learn a *ranking* (which configuration is faster) rather than absolute times, because the
search only needs the order and times of different layers differ by orders of magnitude; the
labels are throughputs normalised per task (1.0 = that task's best seen), and the groups let a
model trained on several layers compare configurations only within a layer.

The trees are XGBoost's ``rank:pairwise`` objective, the model AutoTVM's XGBTuner uses: a
self-contained wheel (``xgboost-cpu`` bundles its OpenMP runtime, unlike LightGBM's Linux wheel,
which needs the system's ``libgomp``), with a ranking objective that scikit-learn's boosted trees
lack. The MLP is plain numpy (RankNet pairwise loss, Adam), so it needs nothing extra.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from vta.compiler.tune.errors import TuneError

__all__ = ["COST_MODELS", "CostModel", "MLPModel", "XGBModel", "create_cost_model"]


class CostModel(ABC):
    """fit(features, normalised throughput, group ids) then predict(features) -> scores (higher is faster)."""

    name: str

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None: ...

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray: ...


def _xgboost():
    try:
        import xgboost
    except ImportError as e:
        raise TuneError("the tree-based cost model needs XGBoost: pip install \".[tune]\" from the pynq-vta "
                        "checkout") from e
    return xgboost


class XGBModel(CostModel):
    """Gradient-boosted trees with XGBoost's pairwise ranking objective (as AutoTVM's XGBTuner)."""

    name = "xgb"

    def __init__(self, seed: int = 0, rounds: int = 100):
        self.xgb = _xgboost()
        self.seed, self.rounds = seed, rounds
        self.booster = None

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
        order = np.argsort(groups, kind="stable")
        d = self.xgb.DMatrix(x[order], label=y[order])
        d.set_group(np.unique(groups[order], return_counts=True)[1])
        params = {"objective": "rank:pairwise", "max_depth": 4, "eta": 0.3, "min_child_weight": 0.0,
                  "subsample": 1.0, "lambda": 1.0, "nthread": 1, "seed": self.seed, "verbosity": 0}
        self.booster = self.xgb.train(params, d, self.rounds)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise TuneError("xgb cost model: predict before fit")
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float64)


class MLPModel(CostModel):
    """Two hidden layers of 32 tanh units trained with RankNet's pairwise logistic loss (numpy, Adam)."""

    name = "mlp"

    def __init__(self, seed: int = 0, hidden: int = 32, epochs: int = 150, lr: float = 0.01):
        self.rng = np.random.default_rng(seed)
        self.hidden, self.epochs, self.lr = hidden, epochs, lr
        self.params: list[np.ndarray] | None = None

    def _init(self, n: int) -> list[np.ndarray]:
        h = self.hidden
        return [self.rng.normal(0, 1 / np.sqrt(n), (n, h)), np.zeros(h), self.rng.normal(0, 1 / np.sqrt(h), (h, h)),
                np.zeros(h), self.rng.normal(0, 1 / np.sqrt(h), (h, 1)), np.zeros(1)]

    def _forward(self, x: np.ndarray, p: list[np.ndarray]) -> tuple[np.ndarray, tuple]:
        a1 = np.tanh(x @ p[0] + p[1])
        a2 = np.tanh(a1 @ p[2] + p[3])
        return (a2 @ p[4] + p[5])[:, 0], (x, a1, a2)

    def _backward(self, g: np.ndarray, cache: tuple, p: list[np.ndarray]) -> list[np.ndarray]:
        x, a1, a2 = cache
        g = g[:, None]
        d2 = (g @ p[4].T) * (1 - a2 ** 2)
        d1 = (d2 @ p[2].T) * (1 - a1 ** 2)
        return [x.T @ d1, d1.sum(0), a1.T @ d2, d2.sum(0), a2.T @ g, g.sum(0)]

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
        self.mean, self.std = x.mean(0), x.std(0) + 1e-9
        z = (x - self.mean) / self.std
        i, j = np.nonzero((groups[:, None] == groups[None, :]) & (y[:, None] > y[None, :]))
        p = self._init(x.shape[1])
        m = [np.zeros_like(w) for w in p]
        v = [np.zeros_like(w) for w in p]
        for t in range(1, self.epochs + 1):
            s, cache = self._forward(z, p)
            # RankNet: -log sigmoid(s_i - s_j) for each pair where i is faster than j.
            sig = 1 / (1 + np.exp(np.clip(s[i] - s[j], -30, 30)))
            g = np.zeros_like(s)
            np.add.at(g, i, -sig)
            np.add.at(g, j, sig)
            g /= max(len(i), 1)
            for k, grad in enumerate(self._backward(g, cache, p)):
                m[k] = 0.9 * m[k] + 0.1 * grad
                v[k] = 0.999 * v[k] + 0.001 * grad ** 2
                p[k] -= self.lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
        self.params = p

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.params is None:
            raise TuneError("mlp cost model: predict before fit")
        return self._forward((x - self.mean) / self.std, self.params)[0]


COST_MODELS = {"xgb": XGBModel, "mlp": MLPModel}


def create_cost_model(name: str, seed: int = 0) -> CostModel:
    """A learned cost model by name (``xgb`` or ``mlp``)."""
    if name not in COST_MODELS:
        raise TuneError(f"unknown cost model {name!r}; learned models: {', '.join(COST_MODELS)}")
    return COST_MODELS[name](seed=seed)
