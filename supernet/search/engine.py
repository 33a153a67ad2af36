"""`run_search`: NSGA-II over the children of a trained supernet, resumable by deterministic re-execution.

Why NSGA-II. The search has two objectives (accuracy, latency), three at most with params, FLOPs or
memory, and a budget of a few hundred to a few thousand true evaluations. NSGA-II's non-dominated sorting
plus crowding distance is the standard for 2-3 objectives, needs no reference directions or weight
vectors to tune, keeps the extremes of the front (crowding gives them infinite distance: the fastest and
the most accurate children survive), and handles hard limits by constraint domination. NSGA-III's
reference directions pay off from about four objectives, where crowding stops discriminating; MOEA/D
decomposes into scalar subproblems whose weights must match the front's (very uneven) scale and shape, and
its neighbourhood replacement suits cheap, continuous problems better than a few hundred discrete,
expensive evaluations. pymoo supplies the selection, sorting and survival; the variation operators are
the space's own (`supernet.search.operators`).

Resume. Every truly evaluated child is appended to `candidates.jsonl` at once and `state.json` is
rewritten after each generation. A resumed search simply runs again from generation 0 with the same
seed: every child it meets that was evaluated before is read from the file instead of evaluated, so it
walks exactly the path of an uninterrupted run (the generations are a pure function of the seed and of
the accuracies) and pays only for what was not evaluated yet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.population import Population
from rich.console import Console
from tqdm import tqdm

from supernet.config import space_from_config
from supernet.models import Supernet
from supernet.progress import progress_enabled
from supernet.run.directory import read_run_config
from supernet.search.errors import SearchConfigError, SearchError, SearchStateError
from supernet.search.evaluator import AccuracyEvaluator
from supernet.search.front import LATENCY_REF_FACTOR, hypervolume, pareto_front
from supernet.search.latency import kendall_tau, load_table, measure_front, table_identity
from supernet.search.objectives import (
    ChildMeasures,
    Constraint,
    LatencyPredictor,
    constraints_from,
    feasible,
    minimised,
    require_satisfiable,
)
from supernet.search.operators import ArchCrossover, ArchDuplicates, ArchMutation, ArchSampling
from supernet.search.predictor import RidgePredictor, best_by_rank_and_crowding
from supernet.search.problem import ArchProblem, Scored
from supernet.search.report import write_outputs
from supernet.search.result import FrontEntry, GenerationStats, SearchResult
from supernet.search.settings import TARGETS, SearchSettings
from supernet.search.store import Candidate, CandidateLog, SearchState
from supernet.space import Arch, SearchSpace

OUTPUT_FILES = ("state.json", "candidates.jsonl", "generations.jsonl", "pareto.json", "pareto.png",
                "summary.json")


class Evaluator(Protocol):
    """What the search needs of an accuracy evaluator (`AccuracyEvaluator`, or a wrapper around one)."""

    key: dict[str, Any]
    model: Supernet

    def __call__(self, arch: Arch) -> float: ...


def default_out_dir(run_dir: Path, target: str) -> Path:
    return Path(run_dir) / "search" / target


def run_search(run_dir: str | Path, target: str, settings: SearchSettings, *, lut: str | Path | None = None,
               table: LatencyPredictor | None = None, evaluator: Evaluator | None = None,
               restart: bool = False, console: Console | None = None,
               on_generation: Callable[[GenerationStats], None] | None = None) -> SearchResult:
    """Search the children of the supernet in `run_dir` for `target`, writing into RUN_DIR/search/<target>.

    `table` (anything with `predict(arch) -> ms`) replaces the latency table that `lut` or the cache would
    give; `evaluator` replaces the accuracy evaluator built from the run (it may be shared between searches
    of the same run: its results are memoised by arch). `on_generation` is called after each generation's
    state is saved.
    """
    started = time.perf_counter()
    console = console or Console()
    if target not in TARGETS:
        raise SearchConfigError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
    run_dir = Path(run_dir)
    space = space_from_config(read_run_config(run_dir))
    # Cheap checks first: a missing target or an impossible limit fails before any data or weights load.
    table = table if table is not None else load_table(space, target, lut, settings.latency)
    table_target = getattr(table, "fingerprint", {}).get("target")
    if table_target not in (None, target):
        raise SearchError(f"the latency table {getattr(table, 'path', '')} was measured on a {table_target} "
                          f"target, not --target {target}: pass a {target} table with --lut")
    measures = ChildMeasures(space, table)
    constraints = constraints_from(settings.limits)
    require_satisfiable(space, measures, constraints, _table_name(table))

    out_dir = Path(settings.out_dir) if settings.out_dir else default_out_dir(run_dir, target)
    if restart:
        for name in OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)
    if evaluator is None:
        evaluator = AccuracyEvaluator.from_run(run_dir, settings.evaluation)
    state = SearchState(settings.trajectory(), dict(evaluator.key), table_identity(table))
    previous = _previous_state(out_dir, state)
    log = CandidateLog(out_dir / "candidates.jsonl")
    if previous is not None:
        log.load(space, measures)
        state.generation = previous.generation
        console.print(f"resuming {out_dir}: generations 0..{previous.generation} done, {len(log)} children "
                      "evaluated; replaying them from candidates.jsonl", highlight=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    state.save(out_dir / "state.json")

    loop = _Loop(space, settings, measures, constraints, evaluator, log, out_dir, console,
                 replay_through=previous.generation if previous else -1)
    stats = loop.run(state, on_generation)
    state.finished = True
    state.save(out_dir / "state.json")

    # A log resumed with fewer generations than it ran holds later ones: they are not this search's.
    evaluated = [c for c in log if c.generation <= settings.generations]
    pool = [c for c in evaluated if feasible(c.measures, constraints)]
    front = [FrontEntry(c) for c in pareto_front(pool, settings.objectives)]
    archs = [e.candidate.arch for e in front]
    measurement = measure_front(evaluator.model, archs, [e.candidate.measures.latency_ms for e in front],
                                table, target, settings.measure_front, settings.measure_repeats)
    limit = settings.limits.get("max_latency_ms")
    for entry, measured in zip(front, measurement.latencies_ms, strict=True):
        entry.latency_ms_measured = measured
        entry.violates_measured = bool(limit is not None and measured is not None and measured > limit)
    extremes = {name: log.get(arch) for name, arch in (("max", space.max()), ("min", space.min()))
                if log.get(arch) is not None}
    result = SearchResult(out_dir, target, settings, space, table, front, evaluated, stats, measurement,
                          loop.latency_ref_ms, loop.evaluations_now,
                          previous.generation if previous else None, extremes, time.perf_counter() - started)
    write_outputs(result)
    return result


def _table_name(table: Any) -> str:
    return str(getattr(table, "name", None) or getattr(table, "path", None) or type(table).__name__)


def _previous_state(out_dir: Path, state: SearchState) -> SearchState | None:
    """The state of an earlier search in `out_dir` that this one may resume; refuses a mismatched one."""
    previous = SearchState.load(out_dir / "state.json")
    if previous is None:
        if (out_dir / "candidates.jsonl").is_file():
            raise SearchStateError(f"{out_dir} holds candidates.jsonl but no state.json: it is not a search "
                                   "this version can resume; pass --restart to start over there")
        return None
    diff = state.differences(previous)
    if diff:
        raise SearchStateError(f"{out_dir} holds a search with other settings ({'; '.join(diff[:3])}"
                               f"{'; ...' if len(diff) > 3 else ''}); resume it with the same settings, "
                               "pass --restart to start over, or choose another out_dir=")
    return previous


class _Loop:
    """The generations: pymoo's ask/tell with our scoring, logging and (optionally) predictor screening."""

    def __init__(self, space: SearchSpace, settings: SearchSettings, measures: ChildMeasures,
                 constraints: Sequence[Constraint], evaluator: Evaluator, log: CandidateLog, out_dir: Path,
                 console: Console, replay_through: int) -> None:
        self.space, self.settings, self.measures, self.constraints = space, settings, measures, constraints
        self.evaluator, self.log, self.out_dir, self.console = evaluator, log, out_dir, console
        self.replay_through = replay_through
        self.latency_ref_ms = LATENCY_REF_FACTOR * measures(space.max()).latency_ms
        self.evaluations_now = 0
        self.generation = 0
        self._bar: tqdm | None = None
        self._counts = {"evaluated": 0, "cached": 0, "infeasible": 0}

    def is_feasible(self, arch: Arch) -> bool:
        return feasible(self.measures(arch), self.constraints)

    def score(self, arch: Arch) -> Scored:
        """The child's measures and, when it meets the limits, its accuracy (from the log, else evaluated)."""
        measures = self.measures(arch)
        if self._bar is not None:
            self._bar.update(1)
        if not feasible(measures, self.constraints):
            self._counts["infeasible"] += 1
            return Scored(arch, measures, None)
        candidate = self.log.get(arch)
        if candidate is None:
            calls = getattr(self.evaluator, "calls", None)
            accuracy = float(self.evaluator(arch))
            # a shared evaluator may know the child from another search: only its real work counts here
            self.evaluations_now += 1 if calls is None else self.evaluator.calls - calls
            candidate = Candidate(arch, accuracy, measures, self.generation)
            self.log.add(candidate)
            self._counts["evaluated"] += 1
        else:
            self._counts["cached"] += 1
        return Scored(arch, measures, candidate.accuracy)

    def run(self, state: SearchState, on_generation: Callable[[GenerationStats], None] | None
            ) -> list[GenerationStats]:
        s = self.settings
        problem = ArchProblem(self.score, s.objectives, self.constraints)
        algorithm = NSGA2(
            pop_size=s.population,
            n_offsprings=s.population,
            sampling=ArchSampling(self.space, self.is_feasible, seeds=(self.space.min(), self.space.max()),
                                  spread_by=lambda arch: self.measures(arch).latency_ms),
            crossover=ArchCrossover(self.space, self.is_feasible, s.crossover_prob),
            mutation=ArchMutation(self.space, self.is_feasible, s.mutation_prob),
            eliminate_duplicates=ArchDuplicates(),
        )
        algorithm.setup(problem, termination=("n_gen", s.generations + 1), seed=s.seed, verbose=False)
        show_bar = progress_enabled(s.progress)
        stats: list[GenerationStats] = []
        for generation in range(s.generations + 1):
            if not algorithm.has_next():
                break
            self.generation = generation
            began = time.perf_counter()
            self._counts = dict.fromkeys(self._counts, 0)
            screen = self._predictor_ready(generation)
            algorithm.n_offsprings = s.population * (s.predictor.oversample if screen else 1)
            offspring = algorithm.ask()
            if offspring is None or len(offspring) == 0:
                break
            tau = None
            with tqdm(total=len(offspring), desc=f"generation {generation}/{s.generations}", unit="child",
                      disable=not show_bar, leave=False, dynamic_ncols=True) as self._bar:
                if screen:
                    offspring, predicted = self._screen(offspring)
                algorithm.evaluator.eval(problem, offspring)
            self._bar = None
            if screen:
                tau = self._predictor_tau(offspring, predicted)
            algorithm.tell(infills=offspring)
            stats.append(self._report(generation, len(offspring), time.perf_counter() - began, tau))
            state.generation = max(state.generation, generation)
            state.save(self.out_dir / "state.json")
            if on_generation is not None:
                on_generation(stats[-1])
        return stats

    # ----- accuracy predictor
    def _predictor_ready(self, generation: int) -> bool:
        p = self.settings.predictor
        return p.enabled and generation > 0 and len(self._training_set(generation)) >= p.min_train

    def _training_set(self, generation: int) -> list[Candidate]:
        # Only what an uninterrupted run would know at this point: a resumed log also holds later generations.
        return [c for c in self.log if c.generation < generation]

    def _screen(self, offspring: Population) -> tuple[Population, list[float | None]]:
        """Keep the `population` offspring that the predictor ranks best (known accuracies are used as they
        are); returns them and the predicted accuracy of each kept one (None where it was known)."""
        train = self._training_set(self.generation)
        predictor = RidgePredictor(self.space, self.settings.predictor.ridge).fit(
            [c.arch for c in train], [c.accuracy for c in train])
        archs = [ind.X[0] for ind in offspring]
        guesses = predictor.predict(archs)
        predicted, F = [], []
        for arch, guess in zip(archs, guesses, strict=True):
            known = self.log.get(arch)
            if known is not None and known.generation >= self.generation:
                known = None  # a resumed log knows later generations; an uninterrupted run would not yet
            accuracy = known.accuracy if known is not None else float(guess)
            predicted.append(None if known is not None else float(guess))
            F.append(minimised(accuracy, self.measures(arch), self.settings.objectives))
        # Proposals over a limit are never worth a slot while proposals within the limits remain.
        within = [i for i, arch in enumerate(archs) if self.is_feasible(arch)]
        over = [i for i in range(len(archs)) if i not in set(within)]
        best = best_by_rank_and_crowding(np.array([F[i] for i in within], dtype=float).reshape(-1, len(F[0])),
                                         self.settings.population)
        keep = sorted([within[i] for i in best] + over[: max(0, self.settings.population - len(within))])
        if self._bar is not None:
            self._bar.total = len(keep)
            self._bar.refresh()
        return offspring[keep], [predicted[i] for i in keep]

    def _predictor_tau(self, offspring: Population, predicted: list[float | None]) -> float | None:
        pairs = [(p, self.log.get(ind.X[0]).accuracy) for ind, p in zip(offspring, predicted, strict=True)
                 if p is not None and self.log.get(ind.X[0]) is not None]
        if len(pairs) < 2:
            return None
        tau = kendall_tau([p for p, _ in pairs], [t for _, t in pairs])
        return None if np.isnan(tau) else float(tau)

    # ----- per-generation report
    def _report(self, generation: int, children: int, seconds: float, tau: float | None) -> GenerationStats:
        pool = [c for c in self.log if c.generation <= generation and feasible(c.measures, self.constraints)]
        front = pareto_front(pool, ("accuracy", "latency_ms"))
        stats = GenerationStats(
            generation=generation, children=children, evaluated=self._counts["evaluated"],
            cached=self._counts["cached"], infeasible=self._counts["infeasible"], front_size=len(front),
            hypervolume=hypervolume([(c.accuracy, c.measures.latency_ms) for c in front],
                                    self.latency_ref_ms),
            best_accuracy=max((c.accuracy for c in front), default=float("nan")),
            fastest_ms=min((c.measures.latency_ms for c in front), default=float("nan")),
            total_evaluations=sum(1 for c in self.log if c.generation <= generation), seconds=seconds,
            predictor_tau=tau)
        replayed = generation <= self.replay_through
        if not replayed:
            with open(self.out_dir / "generations.jsonl", "a") as f:
                f.write(json.dumps(asdict(stats)) + "\n")
        tau_text = f", predictor tau {tau:.2f}" if tau is not None else ""
        self.console.print(
            f"generation {generation}/{self.settings.generations}: {stats.evaluated} evaluated, "
            f"{stats.cached} known, {stats.infeasible} over a limit; front {stats.front_size}, "
            f"hv {stats.hypervolume:.4f}, best {100 * stats.best_accuracy:.2f}%, fastest "
            f"{stats.fastest_ms:.3f} ms{tau_text} ({seconds:.1f} s{', replayed' if replayed else ''})",
            highlight=False)
        return stats
