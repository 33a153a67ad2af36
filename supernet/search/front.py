"""The non-dominated front of evaluated children, and its hypervolume on normalised accuracy and latency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from supernet.search.objectives import minimised
from supernet.search.store import Candidate

# Reference point of the hypervolume: accuracy 0 and this multiple of a reference latency (the max
# child's), so every child of the space lies inside it and the front's extremes still count.
LATENCY_REF_FACTOR = 1.1


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` dominates `b` (minimisation): no worse in every objective and better in one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def nondominated(F: np.ndarray) -> np.ndarray:
    """Indices of the rows of `F` (to minimise) that no other row dominates, ascending."""
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.sort(NonDominatedSorting().do(np.asarray(F, dtype=float), only_non_dominated_front=True))


def pareto_front(candidates: Iterable[Candidate], objectives: Sequence[str]) -> list[Candidate]:
    """The non-dominated candidates over `objectives`, fastest first (then most accurate, then by arch)."""
    pool = list(candidates)
    F = np.array([minimised(c.accuracy, c.measures, objectives) for c in pool], dtype=float)
    front = [pool[i] for i in nondominated(F.reshape(len(pool), len(objectives)))]
    return sorted(front, key=lambda c: (c.measures.latency_ms, -c.accuracy, str(c.arch)))


def hypervolume(points: Iterable[tuple[float, float]], latency_ref_ms: float) -> float:
    """Hypervolume of (accuracy, latency ms) points, in [0, 1].

    Objectives are normalised to (1 - accuracy, latency / latency_ref_ms), both minimised, with the fixed
    reference point (1, 1): accuracy 0 and the reference latency. Points beyond it add nothing.
    """
    P = np.array([(1.0 - acc, lat / latency_ref_ms) for acc, lat in points], dtype=float).reshape(-1, 2)
    P = P[np.all(P < 1.0, axis=1)]
    if len(P) == 0:
        return 0.0
    return float(HV(ref_point=np.ones(2))(P))
