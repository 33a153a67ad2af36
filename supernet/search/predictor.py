"""An accuracy predictor that pre-screens offspring, so true evaluations go to the most promising ones.

A ridge regression on the space's one-hot encoding (`SearchSpace.encode`), refitted each generation on every
child evaluated so far. It is tiny on purpose: with tens to hundreds of training points a linear model
over the choices is about as good as anything, fits in microseconds, and is deterministic. It only ranks
proposals; every child it picks is then truly evaluated, and the front holds true evaluations only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from supernet.space import Arch, SearchSpace


class RidgePredictor:
    def __init__(self, space: SearchSpace, alpha: float = 1.0) -> None:
        self.space, self.alpha = space, alpha
        self.weights: np.ndarray | None = None
        self.loo_rms = 0.0  # root mean square of the leave-one-out residuals: the held-out error to expect

    def _features(self, archs: Sequence[Arch]) -> np.ndarray:
        X = np.array([self.space.encode(a) for a in archs], dtype=float)
        return np.hstack([X, np.ones((len(archs), 1))])  # last column: the intercept, not penalised

    def fit(self, archs: Sequence[Arch], accuracies: Sequence[float]) -> RidgePredictor:
        X, y = self._features(archs), np.asarray(accuracies, dtype=float)
        penalty = self.alpha * np.eye(X.shape[1])
        penalty[-1, -1] = 0.0
        inverse = np.linalg.inv(X.T @ X + penalty + 1e-9 * np.eye(X.shape[1]))
        self.weights = inverse @ X.T @ y
        # A linear smoother's leave-one-out residual is its residual over (1 - leverage): no refits.
        leverage = np.einsum("ij,jk,ik->i", X, inverse, X)
        residuals = (y - X @ self.weights) / np.maximum(1.0 - leverage, 1e-6)
        self.loo_rms = float(np.sqrt(np.mean(residuals**2)))
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("RidgePredictor.predict before fit")
        return self._features(archs) @ self.weights


def best_by_rank_and_crowding(F: np.ndarray, n: int) -> list[int]:
    """Indices of the `n` best rows of `F` (to minimise) as NSGA-II ranks them: front by front, and within
    the last front that fits partly, the least crowded first. Deterministic (stable sorts, no draws)."""
    if n >= len(F):
        return list(range(len(F)))
    chosen: list[int] = []
    for front in NonDominatedSorting().do(np.asarray(F, dtype=float)):
        front = sorted(front.tolist())
        if len(chosen) + len(front) <= n:
            chosen += front
            continue
        crowding = calc_crowding_distance(F[front])
        order = np.argsort(-crowding, kind="stable")
        chosen += [front[i] for i in order[: n - len(chosen)]]
        break
    return chosen
