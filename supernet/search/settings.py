"""The schema of `supernet search`: every key, its default and its range, written once.

`configs/search.yaml` only overrides values; `SearchSettings.from_config` turns the composed config into
this dataclass and adds the one rule a range cannot say (which objectives, in which order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.config import setting
from supernet.latency import LatencyConfig
from supernet.search.errors import SearchConfigError

# Every objective is a field of a candidate; all but accuracy are minimised.
OBJECTIVES = ("accuracy", "latency_ms", "params", "flops", "memory_bytes")
REQUIRED_OBJECTIVES = ("accuracy", "latency_ms")
# constraint key -> the candidate field it limits
CONSTRAINTS = {"max_latency_ms": "latency_ms", "max_params": "params", "max_flops": "flops",
               "max_memory_bytes": "memory_bytes"}
TARGETS = ("cpu", "gpu")


@dataclass
class ConstraintSettings:
    max_latency_ms: float | None = setting(None, gt=0)  # predicted by the latency table
    max_params: float | None = setting(None, gt=0)
    max_flops: float | None = setting(None, gt=0)  # multiply-accumulates, counted as `supernet info` does
    max_memory_bytes: float | None = setting(None, gt=0)  # peak activation memory at batch 1, float32


@dataclass
class EvaluationSettings:
    """Validation accuracy of a BN-recalibrated child (never the test split)."""

    checkpoint: str = setting("best", choices=("best", "last"))
    calib_images: int = setting(512, ge=1)  # a prefix of the run's own seeded BN-recalibration draw
    calib_batch_size: int = setting(256, ge=1)
    val_images: int | None = setting(None, ge=1)  # the full evaluation: first images of the split (null: all)
    screen_images: int | None = setting(2500, ge=1)  # every child first on this prefix; the front's on all
    batch_size: int = setting(64, ge=1)  # larger batches cost more in allocation than they save on a CPU
    cache_mb: float = setting(2048.0, ge=0)  # resized inputs kept on the device per resolution
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = setting("auto", choices=("auto", "fp32", "bf16", "fp16"))
    workers: int | None = setting(None, ge=1)  # children counted at once on a CPU, each in a forked process
    #                                            (null: one per core; on a GPU always 1, in this process)
    threads: int | None = setting(None, ge=1)  # intra-op threads of each counting process (null: the cores
    #                                            shared out among the workers; one worker: torch's default)
    store_dir: str | None = None  # the run's shared accuracy store (null: RUN_DIR/search/accuracy)


@dataclass
class PredictorSettings:
    """The ridge accuracy surrogate that pre-screens offspring; the front is always truly evaluated."""

    enabled: bool = True
    oversample: int = setting(4, ge=1)  # offspring proposed per child that may be evaluated
    min_train: int = setting(16, ge=2)  # evaluated children before the surrogate is used
    ridge: float = setting(1.0, ge=0)  # L2 penalty of the ridge regression on `SearchSpace.encode`
    margin: float = setting(1.0, ge=0)  # skip proposals predicted dominated by more than this many
    #                                    residual standard deviations of the surrogate


@dataclass
class MeasureSettings:
    """End-to-end re-measurement of the final front on the target."""

    front: Any = setting("auto", choices=("auto", True, False))  # auto: target here, table built here
    repeats: int | None = setting(None, ge=1)  # timed calls per child (null: as many as the table used)


@dataclass
class StopSettings:
    """Ends a search before `generations` once its front stops improving."""

    patience: int | None = setting(4, ge=1)  # generations over which the front must gain (null: run them all)
    seeded_patience: int | None = setting(2, ge=1)  # the same for a search whose whole first population came
    #                                                from the run's store (a further device): it starts near
    #                                                its final front
    min_gain: float = setting(0.0005, ge=0)  # hypervolume (0..1) those generations must add together


@dataclass
class SearchSettings:
    seed: int = setting(0, ge=0)
    population: int = setting(24, ge=4)  # children per generation (the NSGA-II population)
    generations: int = setting(10, ge=0)  # after the initial one; raise it and re-run to extend a search
    mutation_prob: float = setting(0.2, ge=0, le=1)  # chance that each choice of a child is redrawn
    crossover_prob: float = setting(0.9, ge=0, le=1)  # chance that a pair of parents is recombined
    objectives: list[str] = setting(list(REQUIRED_OBJECTIVES))  # plus any of params, flops, memory_bytes
    constraints: ConstraintSettings = setting(ConstraintSettings())
    evaluation: EvaluationSettings = setting(EvaluationSettings())
    predictor: PredictorSettings = setting(PredictorSettings())
    latency: LatencyConfig = setting(LatencyConfig())  # how a table is found or built without --lut
    measure: MeasureSettings = setting(MeasureSettings())
    stop: StopSettings = setting(StopSettings())
    progress: Any = setting("auto", choices=("auto", True, False))  # a bar per generation
    out_dir: str | None = None  # null: RUN_DIR/search/<device>

    @property
    def limits(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self.constraints).items() if value is not None}

    def trajectory(self) -> dict[str, Any]:
        """What the sequence of generations depends on. A resume must agree on all of it.

        `generations` is not part of it: a longer search re-executes the same first generations, so
        raising it and re-running extends a finished search.
        """
        return {"seed": self.seed, "population": self.population, "mutation_prob": self.mutation_prob,
                "crossover_prob": self.crossover_prob, "objectives": list(self.objectives),
                "constraints": self.limits, "predictor": asdict(self.predictor),
                "screen_images": self.evaluation.screen_images}

    @classmethod
    def from_config(cls, cfg: DictConfig) -> SearchSettings:
        """The composed `search` config (`compose_config("search", ...)`) as typed settings."""
        settings = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
        if not isinstance(settings, cls):
            raise SearchConfigError(f"search settings must come from compose_config('search'), got "
                                    f"{type(settings).__name__}")
        settings.objectives = ordered_objectives(settings.objectives)
        return settings


def ordered_objectives(names: list[str]) -> list[str]:
    """Accuracy and latency first, in that order (logs, plots and hypervolumes read them there)."""
    for name in names:
        if name not in OBJECTIVES:
            raise SearchConfigError(f"objectives: {name!r} is not one of {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise SearchConfigError(f"objectives: {list(names)} lists an objective twice")
    missing = [name for name in REQUIRED_OBJECTIVES if name not in names]
    if missing:
        raise SearchConfigError(f"objectives: {list(names)} lacks {missing[0]!r}; accuracy and latency_ms "
                                "are always searched")
    return list(REQUIRED_OBJECTIVES) + [n for n in names if n not in REQUIRED_OBJECTIVES]
