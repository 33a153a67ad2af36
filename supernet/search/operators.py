"""pymoo operators that work on `Arch` objects: sampling, mutation, crossover and duplicate elimination.

A pymoo individual here is a one-element object array holding an `Arch`. The genetic operators are the
space's own (`SearchSpace.sample / mutate / crossover`), so every offspring is a valid child by
construction; pymoo only chooses parents and survivors. Randomness: pymoo hands each operator call its
seeded `numpy.random.Generator`; each call derives one `random.Random` from it, so the whole search is a
pure function of the seed.

Offspring are kept inside the hard limits where that is cheap: the limits are on measures that cost
microseconds (table latency, params, FLOPs, memory), so an operator redraws up to `tries` times rather
than spend an accuracy evaluation on a child that could never be on the front. If it cannot, it returns a
parent (a duplicate, which pymoo drops and replaces by another mating).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.sampling import Sampling

from supernet.space import Arch, SearchSpace

Feasible = Callable[[Arch], bool]


def derived_rng(random_state: np.random.Generator) -> random.Random:
    """One `random.Random` per operator call, drawn from pymoo's seeded generator."""
    return random.Random(int(random_state.integers(0, 2**63 - 1)))


def as_objects(archs: Sequence[Arch]) -> np.ndarray:
    """pymoo's design matrix for object variables: shape (n, 1), dtype object."""
    X = np.empty((len(archs), 1), dtype=object)
    for i, arch in enumerate(archs):
        X[i, 0] = arch
    return X


class ArchSampling(Sampling):
    """The initial population: the `seeds` that meet the limits (the min and max children), then distinct
    random children that meet them, spread evenly over `spread_by` (predicted latency) when given.

    Why spread: uniform draws from the space pile up at middling latencies (a sum over many independent
    choices), leaving the fast and the slow ends of the front empty. The latency of a child is known for
    free, so a pool of `pool_factor` times more random children is drawn and, for evenly spaced latency
    targets between the extremes, the pool child nearest each target is taken: the first generation then
    spans the front's whole latency range, while each child is still a random one.
    """

    def __init__(self, space: SearchSpace, feasible: Feasible, seeds: Sequence[Arch] = (),
                 spread_by: Callable[[Arch], float] | None = None, pool_factor: int = 20, tries: int = 200):
        super().__init__()
        self.space, self.feasible, self.seeds = space, feasible, tuple(seeds)
        self.spread_by, self.pool_factor, self.tries = spread_by, pool_factor, tries

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        rng = derived_rng(random_state)
        chosen = list(dict.fromkeys(a for a in self.seeds if self.feasible(a)))[:n_samples]
        wanted = n_samples - len(chosen)
        if wanted <= 0:
            return as_objects(chosen)
        pool = self._random_pool(rng, chosen, wanted * (self.pool_factor if self.spread_by else 1), wanted)
        if self.spread_by is None or len(pool) <= wanted:
            return as_objects(chosen + pool[:wanted])
        return as_objects(chosen + _spread(pool, wanted, self.spread_by, anchors=chosen))

    def _random_pool(self, rng: random.Random, chosen: list[Arch], size: int, wanted: int) -> list[Arch]:
        """Up to `size` distinct random children within the limits and not in `chosen`."""
        pool: list[Arch] = []
        seen = set(chosen)
        budget = self.tries * wanted
        for attempt in range(budget):
            if len(pool) >= size:
                break
            # Uniform draws first; under tight limits few of them qualify, so the second half of the
            # budget walks outward from the children that do.
            parents = chosen + pool
            if attempt < budget // 2 or not parents:
                arch = self.space.sample(rng)
            else:
                arch = self.space.mutate(rng.choice(parents), rng, 0.2)
            if arch not in seen and self.feasible(arch):
                seen.add(arch)
                pool.append(arch)
        return pool


def _spread(pool: list[Arch], k: int, key: Callable[[Arch], float], anchors: Sequence[Arch]) -> list[Arch]:
    """`k` children of `pool` nearest to evenly spaced values of `key` strictly between the extremes of the
    pool and the anchors (the anchors themselves sit at those extremes)."""
    values = [key(a) for a in pool]
    ends = values + [key(a) for a in anchors]
    lo, hi = min(ends), max(ends)
    free = list(range(len(pool)))
    picked = []
    for j in range(k):
        target = lo + (hi - lo) * (j + 1) / (k + 1)
        best = min(free, key=lambda i: abs(values[i] - target))  # ties: the earlier draw
        free.remove(best)
        picked.append(pool[best])
    return picked


class ArchMutation(Mutation):
    """Redraw each choice of a child with probability `gene_prob` (`SearchSpace.mutate`)."""

    def __init__(self, space: SearchSpace, feasible: Feasible, gene_prob: float, tries: int = 20):
        super().__init__(prob=1.0)
        self.space, self.feasible, self.gene_prob, self.tries = space, feasible, gene_prob, tries

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        rng = derived_rng(random_state)
        out = X.copy()
        for i in range(len(X)):
            parent = X[i, 0]
            for _ in range(self.tries):
                child = self.space.mutate(parent, rng, self.gene_prob)
                if self.feasible(child):
                    out[i, 0] = child
                    break
        return out


class ArchCrossover(Crossover):
    """Two parents -> two children by uniform crossover of their choices (`SearchSpace.crossover`)."""

    def __init__(self, space: SearchSpace, feasible: Feasible, prob: float, tries: int = 20):
        super().__init__(n_parents=2, n_offsprings=2, prob=prob)
        self.space, self.feasible, self.tries = space, feasible, tries

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        rng = derived_rng(random_state)
        _, n_matings, _ = X.shape
        Y = np.empty((2, n_matings, 1), dtype=object)
        for k in range(n_matings):
            a, b = X[0, k, 0], X[1, k, 0]
            for slot, (first, second) in enumerate(((a, b), (b, a))):
                Y[slot, k, 0] = first  # a parent unless a recombination meets the limits
                for _ in range(self.tries):
                    child = self.space.crossover(first, second, rng)
                    if self.feasible(child):
                        Y[slot, k, 0] = child
                        break
        return Y


class ArchDuplicates(ElementwiseDuplicateElimination):
    """Two individuals are duplicates when they hold the same child."""

    def is_equal(self, a, b) -> bool:
        return a.X[0] == b.X[0]
