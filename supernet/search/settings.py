"""The search settings, read from `configs/search.yaml` with errors that name the bad key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.latency import LatencyConfig, LatencySettingsError, latency_config
from supernet.search.errors import SearchConfigError

# Every objective is a field of a candidate; all but accuracy are minimised.
OBJECTIVES = ("accuracy", "latency_ms", "params", "flops", "memory_bytes")
REQUIRED_OBJECTIVES = ("accuracy", "latency_ms")
# constraint key -> the candidate field it limits
CONSTRAINTS = {"max_latency_ms": "latency_ms", "max_params": "params", "max_flops": "flops",
               "max_memory_bytes": "memory_bytes"}
TARGETS = ("cpu", "gpu")


@dataclass(frozen=True)
class EvaluationSettings:
    checkpoint: str = "best"
    calib_images: int = 512
    calib_batch_size: int = 256
    val_images: int | None = None
    batch_size: int = 500
    cache_mb: float = 2048.0
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class PredictorSettings:
    enabled: bool = True
    oversample: int = 4
    min_train: int = 16
    ridge: float = 1.0


@dataclass(frozen=True)
class SearchSettings:
    seed: int = 0
    population: int = 32
    generations: int = 10
    mutation_prob: float = 0.2
    crossover_prob: float = 0.9
    objectives: tuple[str, ...] = REQUIRED_OBJECTIVES
    constraints: tuple[tuple[str, float], ...] = ()  # (key, limit) for the limits that are set
    evaluation: EvaluationSettings = EvaluationSettings()
    predictor: PredictorSettings = PredictorSettings()
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # how a table is found or built here
    measure_front: str = "auto"
    measure_repeats: int | None = None
    progress: str | bool = "auto"
    out_dir: str | None = None

    @property
    def limits(self) -> dict[str, float]:
        return dict(self.constraints)

    def trajectory(self) -> dict[str, Any]:
        """What the sequence of generations depends on. A resume must agree on all of it.

        `generations` is not part of it: a longer search re-executes the same first generations, so
        raising it and re-running extends a finished search.
        """
        return {"seed": self.seed, "population": self.population, "mutation_prob": self.mutation_prob,
                "crossover_prob": self.crossover_prob, "objectives": list(self.objectives),
                "constraints": self.limits, "predictor": asdict(self.predictor)}

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any]) -> SearchSettings:
        node = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        evaluation = _section(node, "evaluation")
        predictor = _section(node, "predictor")
        measure = _section(node, "measure")
        return cls(
            seed=_int(node.get("seed", 0), "seed", minimum=0),
            population=_int(node.get("population", 32), "population", minimum=4),
            generations=_int(node.get("generations", 10), "generations", minimum=0),
            mutation_prob=_prob(node.get("mutation_prob", 0.2), "mutation_prob"),
            crossover_prob=_prob(node.get("crossover_prob", 0.9), "crossover_prob"),
            objectives=_objectives(node.get("objectives", list(REQUIRED_OBJECTIVES))),
            constraints=_constraints(node.get("constraints") or {}),
            evaluation=EvaluationSettings(
                checkpoint=_choice(evaluation.get("checkpoint", "best"), "evaluation.checkpoint",
                                   ("best", "last")),
                calib_images=_int(evaluation.get("calib_images", 512), "evaluation.calib_images", 1),
                calib_batch_size=_int(evaluation.get("calib_batch_size", 256), "evaluation.calib_batch_size",
                                      1),
                val_images=_optional_int(evaluation.get("val_images"), "evaluation.val_images"),
                batch_size=_int(evaluation.get("batch_size", 500), "evaluation.batch_size", 1),
                cache_mb=_number(evaluation.get("cache_mb", 2048), "evaluation.cache_mb", minimum=0.0),
                device=str(evaluation.get("device", "auto")),
                precision=str(evaluation.get("precision", "auto")),
                threads=_optional_int(evaluation.get("threads"), "evaluation.threads"),
            ),
            predictor=PredictorSettings(
                enabled=_bool(predictor.get("enabled", True), "predictor.enabled"),
                oversample=_int(predictor.get("oversample", 4), "predictor.oversample", 1),
                min_train=_int(predictor.get("min_train", 16), "predictor.min_train", 2),
                ridge=_number(predictor.get("ridge", 1.0), "predictor.ridge", minimum=0.0),
            ),
            latency=_latency(_section(node, "latency")),
            measure_front=_choice(str(measure.get("front", "auto")).lower(), "measure.front",
                                  ("auto", "true", "false")),
            measure_repeats=_optional_int(measure.get("repeats"), "measure.repeats"),
            progress=node.get("progress", "auto"),
            out_dir=node.get("out_dir"),
        )


def _latency(node: Mapping[str, Any]) -> LatencyConfig:
    try:
        return latency_config(node)
    except LatencySettingsError as err:
        raise SearchConfigError(f"search: {err}") from err


def _section(node: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key) or {}
    if not isinstance(value, Mapping):
        raise SearchConfigError(f"search: '{key}' must be a mapping of keys to values, got {value!r}")
    return dict(value)


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SearchConfigError(f"search: '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _optional_int(value: Any, key: str) -> int | None:
    return None if value is None else _int(value, key, 1)


def _number(value: Any, key: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < minimum:
        raise SearchConfigError(f"search: '{key}' must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _prob(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise SearchConfigError(f"search: '{key}' must be a probability in [0, 1], got {value!r}")
    return float(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise SearchConfigError(f"search: '{key}' must be true or false, got {value!r}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SearchConfigError(f"search: '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def _objectives(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise SearchConfigError(f"search: 'objectives' must be a list such as [accuracy, latency_ms], "
                                f"got {value!r}")
    names = tuple(str(v) for v in value)
    for name in names:
        if name not in OBJECTIVES:
            raise SearchConfigError(f"search: objective {name!r} is not one of {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise SearchConfigError(f"search: 'objectives' lists an objective twice: {list(names)}")
    for name in REQUIRED_OBJECTIVES:
        if name not in names:
            raise SearchConfigError(f"search: 'objectives' must include {name!r} (got {list(names)}); "
                                    "accuracy and latency_ms are always searched")
    # accuracy and latency first, in that order: logs, plots and hypervolumes read them there
    return REQUIRED_OBJECTIVES + tuple(n for n in names if n not in REQUIRED_OBJECTIVES)


def _constraints(node: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(node, Mapping):
        raise SearchConfigError(f"search: 'constraints' must be a mapping such as {{max_latency_ms: 5}}, "
                                f"got {node!r}")
    unknown = sorted(set(node) - set(CONSTRAINTS))
    if unknown:
        raise SearchConfigError(f"search: unknown constraint 'constraints.{unknown[0]}'; allowed: "
                                f"{', '.join(CONSTRAINTS)}")
    limits = []
    for key in CONSTRAINTS:
        value = node.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or value <= 0:
            raise SearchConfigError(f"search: 'constraints.{key}' must be a positive number or null, "
                                    f"got {value!r}")
        limits.append((key, float(value)))
    return tuple(limits)
