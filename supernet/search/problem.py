"""The search as a pymoo problem: one object variable (an `Arch`), objectives to minimise, limits `G <= 0`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.core.problem import Problem

from supernet.search.objectives import Constraint, Measures, minimised
from supernet.space import Arch


@dataclass(frozen=True)
class Scored:
    """A child as the search sees it; `accuracy` is None when it breaks a limit (it is never evaluated)."""

    arch: Arch
    measures: Measures
    accuracy: float | None


class ArchProblem(Problem):
    """Minimise (-accuracy, latency, ...) subject to the hard limits.

    `score` does the work (cache lookup, accuracy evaluation, logging): the problem only lays its results out
    as pymoo's F and G matrices. A child that breaks a limit gets accuracy 0 in F without being evaluated;
    pymoo ranks it by its constraint violation, below every child that meets the limits, so that value
    never decides anything.
    """

    def __init__(self, score: Callable[[Arch], Scored], objectives: Sequence[str],
                 constraints: Sequence[Constraint]) -> None:
        super().__init__(n_var=1, n_obj=len(objectives), n_ieq_constr=len(constraints), vtype=object)
        self.score, self.objectives, self.constraints = score, tuple(objectives), tuple(constraints)

    def _evaluate(self, X, out, *args, **kwargs) -> None:
        scored = [self.score(row[0]) for row in X]
        out["F"] = np.array([minimised(s.accuracy or 0.0, s.measures, self.objectives) for s in scored],
                            dtype=float)
        if self.constraints:
            out["G"] = np.array([[c.excess(s.measures) for c in self.constraints] for s in scored],
                                dtype=float)
