"""The cheap measures of a child (predicted latency, params, FLOPs, peak memory) and the hard limits on them.

Everything here costs microseconds per child, so it is known before a child's accuracy (the one
expensive measure) is ever computed: constraints are checked on it first, and a limit that not even the
smallest child meets is reported before any search starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from supernet.search.errors import InfeasibleConstraintError
from supernet.search.settings import CONSTRAINTS
from supernet.space import Arch, LayerSpec, SearchSpace

FLOAT32_BYTES = 4


class LatencyPredictor(Protocol):
    """What the search needs of a latency table: a predicted end-to-end latency per child."""

    def predict(self, arch: Arch) -> float: ...


def peak_memory_bytes(layers: Sequence[LayerSpec], bytes_per_element: int = FLOAT32_BYTES) -> int:
    """Estimated peak activation memory of one image (weights excluded).

    Per layer, the tensors alive together while it runs: its input (kept for a residual add), its largest
    intermediate (the expanded tensor of an inverted residual, at input and at output resolution) and its
    output; the peak is the largest such sum over the layers. Allocator caching and workspace are not
    modelled: this ranks children, it is not a byte-exact budget.
    """
    peak = 0
    for layer in layers:
        r_in, r_out = layer.resolution, layer.out_resolution
        inputs, outputs = layer.cin * r_in**2, layer.cout * r_out**2
        if layer.kind == "mbconv":
            expanded = layer.cmid * r_in**2 if layer.expand else 0
            live = inputs + max(expanded + layer.cmid * r_out**2, layer.cmid * r_out**2 + outputs)
        elif layer.kind == "classifier":
            live = inputs + layer.cin + (layer.cmid or 0) + layer.cout
        else:
            live = inputs + outputs
        peak = max(peak, live)
    return peak * bytes_per_element


@dataclass(frozen=True)
class Measures:
    """The cheap measures of one child."""

    latency_ms: float
    params: int
    flops: int
    memory_bytes: int

    def get(self, name: str) -> float:
        return float(getattr(self, name))


class ChildMeasures:
    """Measures of children of `space`, memoised by arch (the search asks for the same child often)."""

    def __init__(self, space: SearchSpace, latency: LatencyPredictor) -> None:
        self.space, self.latency = space, latency
        self._memo: dict[Arch, Measures] = {}

    def __call__(self, arch: Arch) -> Measures:
        found = self._memo.get(arch)
        if found is None:
            layers = self.space.layers(arch)
            found = Measures(latency_ms=float(self.latency.predict(arch)),
                             params=sum(layer.params() for layer in layers),
                             flops=sum(layer.flops() for layer in layers),
                             memory_bytes=peak_memory_bytes(layers))
            self._memo[arch] = found
        return found


@dataclass(frozen=True)
class Constraint:
    key: str  # e.g. "max_latency_ms"
    limit: float

    @property
    def measure(self) -> str:
        return CONSTRAINTS[self.key]

    def excess(self, measures: Measures) -> float:
        """How far over the limit (<= 0: met), in the measure's units, as pymoo's `G <= 0` wants it."""
        return measures.get(self.measure) - self.limit

    def met(self, measures: Measures) -> bool:
        return self.excess(measures) <= 0


def constraints_from(limits: dict[str, float]) -> list[Constraint]:
    return [Constraint(key, limit) for key, limit in limits.items()]


def feasible(measures: Measures, constraints: Sequence[Constraint]) -> bool:
    return all(c.met(measures) for c in constraints)


_UNITS = {"latency_ms": "ms", "params": "parameters", "flops": "multiply-accumulates",
          "memory_bytes": "bytes of activations"}
_FIX = {"max_latency_ms": "--max-latency-ms (constraints.max_latency_ms)"}


def require_satisfiable(space: SearchSpace, measures: ChildMeasures, constraints: Sequence[Constraint],
                        latency_source: str) -> None:
    """Raise naming the first limit that even the cheapest child breaks, its value and what to change.

    The min child (smallest resolution, width, depth, kernel and expansion everywhere) is the cheapest by
    params, FLOPs and memory, since each grows with every choice; for table latency it is too, up to the
    measurement noise of single table entries.
    """
    smallest = space.min()
    values = measures(smallest)
    for constraint in constraints:
        if constraint.met(values):
            continue
        value = values.get(constraint.measure)
        where = f" on {latency_source}" if constraint.measure == "latency_ms" else ""
        setting = _FIX.get(constraint.key, f"constraints.{constraint.key}")
        raise InfeasibleConstraintError(
            f"constraint {constraint.key}={constraint.limit:g} cannot be met: the smallest child {smallest} "
            f"already has {value:.4g} {_UNITS[constraint.measure]}{where}; raise {setting} to at least "
            f"{value:.4g}, or search a space with smaller children")


def minimised(accuracy: float, measures: Measures, objectives: Sequence[str]) -> list[float]:
    """The objective vector in pymoo's minimisation form: accuracy negated, the measures as they are."""
    return [-accuracy if name == "accuracy" else measures.get(name) for name in objectives]
