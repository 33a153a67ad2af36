"""The phases of progressive shrinking, read from YAML: what each trains and for how long.

A phase names the dimensions it makes elastic and their choices; every dimension it does not name is
fixed at its largest choice. That rule has no exceptions, input resolution included: Once-for-All
keeps the resolution elastic in every phase, which here means listing `resolution` in every phase.
Each phase becomes a sub-space of the search space (the same stages, fewer choices), so sampling,
extremes and validation are the search space's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from supernet.checks import is_int, is_number
from supernet.errors import SupernetError
from supernet.space import SearchSpace

DIMENSIONS = ("kernel", "expand", "depth", "width", "resolution")
_STAGE_FIELD = {"kernel": "kernels", "expand": "expands", "depth": "depths", "width": "widths"}
_PHASE_KEYS = {"name", "elastic", "epochs", "lr", "warmup_epochs", "children_per_step", "sort_channels",
               "distill_weight"}


class PhaseConfigError(SupernetError):
    """A progressive-shrinking phase list that does not fit the search space or the data."""


@dataclass(frozen=True)
class Phase:
    name: str
    elastic: dict[str, tuple[float, ...]]  # dimension -> its choices in this phase (only elastic ones)
    epochs: float
    lr: float
    warmup_epochs: float
    children_per_step: int
    sort_channels: bool
    distill_weight: float

    def summary(self) -> str:
        dims = ", ".join(f"{dim} {{{', '.join(f'{c:g}' for c in choices)}}}"
                         for dim, choices in self.elastic.items())
        return f"elastic {dims}" if dims else "the full network only"


@dataclass(frozen=True)
class PhaseSpan:
    """A phase placed on the step axis: it trains steps [start, end)."""

    index: int
    phase: Phase
    start: int
    end: int
    space: SearchSpace  # the sub-space it samples from

    @property
    def steps(self) -> int:
        return self.end - self.start


def parse_phases(node: Any, space: SearchSpace, default_lr: float) -> list[Phase]:
    """Validate `strategy.phases` against `space`; errors name the bad key (`strategy.phases[i].…`)."""
    if isinstance(node, str | bytes) or not isinstance(node, Sequence) or not node:
        raise PhaseConfigError(f"strategy.phases must be a non-empty list of phases, got {node!r}")
    phases = [_parse_phase(p, f"strategy.phases[{i}]", space, default_lr) for i, p in enumerate(node)]
    if phases[0].distill_weight:
        raise PhaseConfigError("strategy.phases[0].distill_weight must be 0: the teacher is the network the "
                               "first phase trains, so it does not exist yet")
    return phases


def _parse_phase(node: Any, where: str, space: SearchSpace, default_lr: float) -> Phase:
    if not isinstance(node, Mapping):
        raise PhaseConfigError(f"{where} must be a mapping with keys {sorted(_PHASE_KEYS)}, got {node!r}")
    unknown = sorted(set(node) - _PHASE_KEYS)
    if unknown:
        raise PhaseConfigError(f"{where}.{unknown[0]} is not a phase key; allowed: {sorted(_PHASE_KEYS)}")
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise PhaseConfigError(f"{where}.name must be a non-empty string, got {name!r}")
    if "epochs" not in node:
        raise PhaseConfigError(f"{where}.epochs is missing; give the phase's length in (fractional) epochs")
    epochs = _number(node["epochs"], f"{where}.epochs", positive=True)
    warmup = _number(node.get("warmup_epochs", 0.0), f"{where}.warmup_epochs", positive=False)
    if warmup > epochs:
        raise PhaseConfigError(f"{where}.warmup_epochs={warmup:g} is longer than the phase "
                               f"({where}.epochs={epochs:g}); lower it")
    children = node.get("children_per_step", 1)
    if not is_int(children) or children <= 0:
        raise PhaseConfigError(f"{where}.children_per_step must be a positive integer, got {children!r}")
    sort = node.get("sort_channels", False)
    if not isinstance(sort, bool):
        raise PhaseConfigError(f"{where}.sort_channels must be true or false, got {sort!r}")
    return Phase(
        name=name,
        elastic=_parse_elastic(node.get("elastic") or {}, f"{where}.elastic", space),
        epochs=epochs,
        lr=_number(node.get("lr", default_lr), f"{where}.lr", positive=True),
        warmup_epochs=warmup,
        children_per_step=children,
        sort_channels=sort,
        distill_weight=_number(node.get("distill_weight", 0.0), f"{where}.distill_weight", positive=False),
    )


def _parse_elastic(node: Any, where: str, space: SearchSpace) -> dict[str, tuple[float, ...]]:
    if not isinstance(node, Mapping):
        raise PhaseConfigError(f"{where} must map dimensions ({', '.join(DIMENSIONS)}) to choices, "
                               f"got {node!r}")
    elastic = {}
    for dim, choices in node.items():
        if dim not in DIMENSIONS:
            raise PhaseConfigError(f"{where}.{dim} is not a dimension; choose from {', '.join(DIMENSIONS)}")
        elastic[dim] = _parse_choices(choices, f"{where}.{dim}", space_choices(space, dim))
    # One order whatever the YAML's, so that the phase summary and sampling read the same everywhere.
    return {dim: elastic[dim] for dim in DIMENSIONS if dim in elastic}


def space_choices(space: SearchSpace, dim: str) -> tuple[float, ...]:
    """Every choice of `dim` that some stage (or the input, for resolution) of `space` offers."""
    if dim == "resolution":
        return tuple(space.spec.resolutions)
    return tuple(sorted({c for stage in space.stages for c in getattr(stage, _STAGE_FIELD[dim])}))


def _parse_choices(value: Any, where: str, offered: tuple[float, ...]) -> tuple[float, ...]:
    if value == "all":
        return offered
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise PhaseConfigError(f"{where} must be a non-empty list of choices or 'all', got {value!r}")
    for choice in value:
        if not is_number(choice) or choice not in offered:
            raise PhaseConfigError(f"{where}: {choice!r} is not a choice of the space "
                                   f"(it offers {', '.join(f'{c:g}' for c in offered)})")
    if len(set(value)) != len(value):
        raise PhaseConfigError(f"{where} lists a choice twice: {list(value)}")
    return tuple(sorted(value))


def _number(value: Any, where: str, positive: bool) -> float:
    if not is_number(value) or value < 0 or (positive and value == 0):
        need = "a positive number" if positive else "a number >= 0"
        raise PhaseConfigError(f"{where} must be {need}, got {value!r}")
    return float(value)


def phase_space(space: SearchSpace, phase: Phase, where: str) -> SearchSpace:
    """The children `phase` trains: its elastic choices, every other dimension at its largest."""
    spec = space.spec

    def keep(dim: str, offered: tuple, stage: str) -> tuple:
        if dim not in phase.elastic:
            return (max(offered),)
        kept = tuple(c for c in offered if c in phase.elastic[dim])
        if not kept:
            raise PhaseConfigError(f"{where}.elastic.{dim}: none of {list(phase.elastic[dim])} is a choice "
                                   f"of {stage} (it offers {list(offered)})")
        return kept

    stages = tuple(
        replace(stage, **{field: keep(dim, getattr(stage, field), f"stage {i}")
                          for dim, field in _STAGE_FIELD.items()})
        for i, stage in enumerate(spec.stages)
    )
    resolutions = keep("resolution", spec.resolutions, "the input")
    return SearchSpace(replace(spec, stages=stages, resolutions=resolutions))


def place_phases(phases: list[Phase], space: SearchSpace, steps_per_epoch: int) -> list[PhaseSpan]:
    """Step ranges of the phases. Boundaries are rounded from cumulative epochs, so rounding never adds
    up across phases; a phase that rounds to no step at all is an error naming its `epochs`."""
    spans, elapsed, start = [], 0.0, 0
    for i, phase in enumerate(phases):
        elapsed += phase.epochs
        end = round(elapsed * steps_per_epoch)
        if end <= start:
            raise PhaseConfigError(f"strategy.phases[{i}].epochs={phase.epochs:g} gives no training step at "
                                   f"{steps_per_epoch} steps per epoch; lengthen the phase or use more data")
        spans.append(PhaseSpan(i, phase, start, end, phase_space(space, phase, f"strategy.phases[{i}]")))
        start = end
    return spans
