"""Which whole children calibrate a table and which validate it: seeded, distinct, max and min included."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

from supernet.latency.errors import LatencySettingsError
from supernet.space import Arch, SearchSpace


@dataclass(frozen=True)
class CalibrationPlan:
    """`children` random children besides max and min; a share `held_out` of them is kept out of the fit."""

    children: int = 40
    held_out: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.children, bool) or not isinstance(self.children, int) or self.children < 2:
            raise LatencySettingsError(f"calibration.children must be an integer >= 2, got {self.children!r}")
        if not 0.0 < self.held_out < 1.0:
            raise LatencySettingsError(f"calibration.held_out must be in (0, 1), got {self.held_out!r}")


def distinct_random_archs(space: SearchSpace, n: int, rng: random.Random,
                          exclude: Collection[Arch] = ()) -> list[Arch]:
    """Up to `n` distinct random children not in `exclude` (fewer only if the space is that small)."""
    seen, out = set(exclude), []
    for _ in range(50 * n):
        if len(out) == n:
            break
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def calibration_split(space: SearchSpace, plan: CalibrationPlan) -> tuple[list[Arch], list[Arch]]:
    """(fit children, held-out children). Max and min always go to the fit: they anchor the extremes."""
    extremes = list(dict.fromkeys([space.max(), space.min()]))
    randoms = distinct_random_archs(space, plan.children, random.Random(plan.seed), exclude=extremes)
    if len(randoms) < 2:
        raise LatencySettingsError(
            f"space '{space.name}' has {space.size()} children: too few to calibrate on some and hold others "
            "out; widen its choices (or measure its children directly with measure_child_latency)")
    n_held = max(1, round(plan.held_out * len(randoms)))
    return extremes + randoms[n_held:], randoms[:n_held]
