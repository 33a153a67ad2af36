"""What a search returns: the front (with measured latencies), every candidate, and per-generation figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from supernet.search.front import hypervolume
from supernet.search.latency import FrontMeasurement
from supernet.search.objectives import LatencyPredictor
from supernet.search.settings import SearchSettings
from supernet.search.store import Candidate
from supernet.space import SearchSpace


@dataclass(frozen=True)
class GenerationStats:
    generation: int
    children: int  # scored this generation
    evaluated: int  # of them, truly evaluated now
    cached: int  # of them, known from earlier (this search or a resumed one)
    infeasible: int  # of them, breaking a limit (never evaluated)
    front_size: int
    hypervolume: float
    best_accuracy: float
    fastest_ms: float
    total_evaluations: int
    seconds: float
    predictor_tau: float | None = None  # Kendall tau, predicted vs true accuracy of the screened offspring
    promoted: int = 0  # children of the front evaluated on every validation image this generation
    skipped: int = 0  # offspring the surrogate predicted dominated, never evaluated


@dataclass
class FrontEntry:
    candidate: Candidate
    latency_ms_measured: float | None = None
    violates_measured: bool = False


@dataclass
class SearchResult:
    out_dir: Path
    target: str
    settings: SearchSettings
    space: SearchSpace
    table: LatencyPredictor
    front: list[FrontEntry]
    candidates: list[Candidate]
    generations: list[GenerationStats]
    measurement: FrontMeasurement
    latency_ref_ms: float
    evaluations_now: int  # true evaluations by this call (0 when everything came from the files)
    resumed_from: int | None = None  # the last generation completed before this call, when resumed
    extremes: dict[str, Candidate] = field(default_factory=dict)
    wall_s: float = 0.0
    device: str = ""  # the folder name under RUN_DIR/search/
    runtime: str | None = None  # the runtime the latency table records, where it records one
    promotions_now: int = 0  # children extended to every validation image by this call
    prefix_errors: list[float] = field(default_factory=list)  # all-images minus prefix accuracy, per child
    seeded: bool = False  # the whole first population came from the run's store (stop.seeded_patience)

    @property
    def hypervolume(self) -> float:
        return hypervolume(((e.candidate.accuracy, e.candidate.measures.latency_ms) for e in self.front),
                           self.latency_ref_ms)
