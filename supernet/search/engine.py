"""`run_search`: NSGA-II over the children of a trained supernet for one device, on the run's shared
accuracy store, resumable by deterministic re-execution.

NSGA-II because the search has two or three objectives and a few hundred expensive discrete evaluations,
where its crowding keeps the front's extremes with nothing to tune (docs/search.md compares NSGA-III and
MOEA/D). Each child is first evaluated on a prefix of the validation images; the children on the front
are then evaluated on all of them, so the front is always truly evaluated. A ridge surrogate ranks
oversampled offspring and skips those it predicts dominated.

Resume: the store keeps every evaluation and `state.json` how many store records the search started
from, so a resumed search runs again from generation 0 with the same seed, reads every child it meets
from the store, and walks exactly the path of an uninterrupted run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.population import Population
from rich.console import Console
from tqdm import tqdm

from supernet.config import space_from_config
from supernet.latency import graph_cache
from supernet.progress import progress_enabled
from supernet.run.directory import read_run_config
from supernet.run.lock import exclusive
from supernet.search.accuracy_store import AccuracyStore, Evaluation, Request
from supernet.search.devices import Device
from supernet.search.errors import SearchConfigError, SearchStateError
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
from supernet.search.store import Candidate, SearchState, write_candidates
from supernet.space import Arch, ArchError, SearchSpace

OUTPUT_FILES = ("state.json", "candidates.jsonl", "generations.jsonl", "pareto.json", "pareto.png",
                "summary.json")


class Evaluator(Protocol):
    """What the search needs of an accuracy evaluator (`AccuracyEvaluator`, or a wrapper around one)."""

    key: dict[str, Any]
    num_images: int

    def correct_many(self, requests: Sequence[Request]) -> Iterator[int]: ...


def default_out_dir(run_dir: Path, device: str) -> Path:
    return Path(run_dir) / "search" / device


def default_store_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "search" / "accuracy"


def open_store(run_dir: Path, settings: SearchSettings, evaluator: Evaluator) -> AccuracyStore:
    directory = settings.evaluation.store_dir or default_store_dir(run_dir)
    return AccuracyStore(directory, evaluator.key)


def run_search(run_dir: str | Path, target: str | None, settings: SearchSettings, *,
               lut: str | Path | None = None, table: LatencyPredictor | None = None,
               device: Device | None = None, evaluator: Evaluator | None = None,
               store: AccuracyStore | None = None, restart: bool = False, console: Console | None = None,
               on_generation: Callable[[GenerationStats], None] | None = None) -> SearchResult:
    """Search the children of the supernet in `run_dir` for one device, writing RUN_DIR/search/<device>.

    The device is `device`, else `table` (anything with `predict(arch) -> ms`) or `lut` or the table
    cached for `target`, named `target`. `evaluator` and `store` may be shared by the searches of one
    run. `on_generation` is called after each generation's state is saved.
    """
    started = time.perf_counter()
    console = console or Console()
    run_dir = Path(run_dir)
    space = space_from_config(read_run_config(run_dir))
    if device is None:
        if target not in TARGETS:
            raise SearchConfigError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
        # Cheap checks first: a missing target or an impossible limit fails before data or weights load.
        table = table if table is not None else load_table(space, target, lut, settings.latency)
        device = Device(target, table, target)
    measures = ChildMeasures(space, device.table)
    constraints = constraints_from(settings.limits)
    require_satisfiable(space, measures, constraints, _table_name(device.table))

    out_dir = Path(settings.out_dir) if settings.out_dir else default_out_dir(run_dir, device.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(out_dir / ".lock", f"the search in {out_dir}"), ExitStack() as owned:
        if restart:
            for name in OUTPUT_FILES:
                (out_dir / name).unlink(missing_ok=True)
        if evaluator is None:  # then its worker processes stop with this search
            evaluator = owned.enter_context(AccuracyEvaluator.from_run(run_dir, settings.evaluation))
        store = store if store is not None else open_store(run_dir, settings, evaluator)
        state = SearchState(settings.trajectory(), dict(evaluator.key), table_identity(device.table),
                            prior_records=len(store.records))
        previous = _previous_state(out_dir, state)
        if previous is not None:
            state.prior_records = previous.prior_records
            state.generation = previous.generation
            console.print(f"resuming {out_dir}: generations 0..{previous.generation} done; replaying them "
                          "from the run's accuracy store", highlight=False)
        state.save(out_dir / "state.json")

        loop = _Loop(space, settings, measures, constraints, evaluator, store, out_dir, console,
                     replay_through=previous.generation if previous else -1)
        loop.learn_prior(store.records[: state.prior_records])
        stats = loop.run(state, on_generation)
        state.finished = True
        state.save(out_dir / "state.json")

        evaluated = loop.candidates()
        front = [FrontEntry(c) for c in pareto_front(loop.ranked(), settings.objectives)]
        archs = [e.candidate.arch for e in front]
        mode = {True: "true", False: "false"}.get(settings.measure.front, settings.measure.front)
        predicted = [e.candidate.measures.latency_ms for e in front]
        measurement = measure_front(space, archs, predicted, device.table, device.target, mode,
                                    settings.measure.repeats, graph_cache(settings.latency))
        limit = settings.limits.get("max_latency_ms")
        for entry, measured in zip(front, measurement.latencies_ms, strict=True):
            entry.latency_ms_measured = measured
            entry.violates_measured = bool(limit is not None and measured is not None and measured > limit)
        by_arch = {c.arch: c for c in evaluated}
        extremes = {name: by_arch[arch] for name, arch in (("max", space.max()), ("min", space.min()))
                    if arch in by_arch}
        result = SearchResult(out_dir, device.target, settings, space, device.table, front, evaluated, stats,
                              measurement, loop.latency_ref_ms, loop.evaluations_now,
                              previous.generation if previous else None, extremes,
                              time.perf_counter() - started, device=device.name,
                              runtime=device.runtime, promotions_now=loop.promotions_now,
                              prefix_errors=list(loop.prefix_errors), seeded=loop.seeded)
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
    """The generations: pymoo's ask/tell with our scoring, screening, promotion and reporting."""

    def __init__(self, space: SearchSpace, settings: SearchSettings, measures: ChildMeasures,
                 constraints: Sequence[Constraint], evaluator: Evaluator, store: AccuracyStore, out_dir: Path,
                 console: Console, replay_through: int) -> None:
        self.space, self.settings, self.measures, self.constraints = space, settings, measures, constraints
        self.evaluator, self.store, self.out_dir, self.console = evaluator, store, out_dir, console
        self.replay_through = replay_through
        self.latency_ref_ms = LATENCY_REF_FACTOR * measures(space.max()).latency_ms
        self.full_images = evaluator.num_images
        screen = settings.evaluation.screen_images
        self.screen_images = self.full_images if screen is None else min(screen, self.full_images)
        self.evaluations_now = 0  # children evaluated by this call (on the prefix, or at once on all)
        self.promotions_now = 0  # children extended to all validation images by this call
        self.generation = 0
        self.known: dict[Arch, Evaluation] = {}  # this search's best evaluation of each child it knows
        self.prefix_errors: list[float] = []  # accuracy on all images minus on the prefix, of each child
        #                                        counted both ways
        self.seen: dict[Arch, int] = {}  # the generation it first met each (-1: known from the store)
        self.seeded = False  # the whole first population came from the store (another device's search)
        self._bar: tqdm | None = None
        self._counts: dict[str, int] = {}

    # ----- knowledge
    def learn_prior(self, records: Sequence[Evaluation]) -> None:
        """Children evaluated before this search began (by any search of the run), best record each."""
        prefixes: dict[Arch, Evaluation] = {}
        for record in records:
            try:
                arch = self.space.parse(record.arch)
            except ArchError:
                continue  # not a child of this space: a store is per run, so only a hand-edited line
            if record.images == self.screen_images:
                prefixes[arch] = record
            elif record.images == self.full_images and arch in prefixes:
                self.prefix_errors.append(record.accuracy - prefixes[arch].accuracy)
            if arch not in self.known or record.images > self.known[arch].images:
                self.known[arch] = record
            self.seen.setdefault(arch, -1)

    def candidates(self, through: int | None = None) -> list[Candidate]:
        """The children met through generation `through`, with the accuracy they were counted at."""
        return [Candidate(arch, self.known[arch].accuracy, self.measures(arch), generation,
                          self.known[arch].images)
                for arch, generation in self.seen.items() if through is None or generation <= through]

    def estimate(self, arch: Arch) -> float:
        """The child's accuracy on every validation image: counted there, else its count on the prefix plus
        the prefix's mean error over the children counted both ways (the first images need not be typical,
        and an uncorrected prefix would rank new children against full counts unfairly)."""
        record = self.known[arch]
        if record.images == self.screen_images < self.full_images and self.prefix_errors:
            return record.accuracy + sum(self.prefix_errors) / len(self.prefix_errors)
        return record.accuracy

    def ranked(self, through: int | None = None) -> list[Candidate]:
        """The children within the limits met through generation `through`, at their estimated accuracy on
        every image: what selection, promotion and the front compare."""
        return [replace(c, accuracy=self.estimate(c.arch)) for c in self.candidates(through)
                if feasible(c.measures, self.constraints)]

    def is_feasible(self, arch: Arch) -> bool:
        return feasible(self.measures(arch), self.constraints)

    def count_new(self, archs: Sequence[Arch]) -> None:
        """Count on the validation prefix, all together, the children of `archs` within the limits that
        this search does not know yet (the store may: then they cost nothing)."""
        new = []
        for arch in archs:
            if not self.is_feasible(arch):
                self._counts["infeasible"] += 1
            elif arch in self.known:
                self._counts["cached"] += 1
            else:
                new.append(arch)
                continue
            self._tick()
        records = self.store.evaluate([(arch, self.screen_images, None) for arch in new],
                                      self.evaluator.correct_many)
        for arch, (record, computed) in zip(new, records, strict=True):
            self.known[arch] = record
            self.evaluations_now += computed
            self._counts["evaluated" if computed else "cached"] += 1
            self._tick()

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def score(self, arch: Arch) -> Scored:
        """The child's measures and, when it meets the limits, its best-known accuracy (`count_new` has
        counted every child it is asked for)."""
        measures = self.measures(arch)
        if not feasible(measures, self.constraints):
            return Scored(arch, measures, None)
        self.seen.setdefault(arch, self.generation)
        return Scored(arch, measures, self.estimate(arch))

    def _promote(self) -> None:
        """Evaluate on every validation image the front's children known only on the prefix, until the
        front (which their new accuracies may change) holds full evaluations only."""
        while True:
            todo = [c.arch for c in pareto_front(self.ranked(self.generation), self.settings.objectives)
                    if c.images < self.full_images]
            if not todo:
                return
            prefixes = [self.known[arch] for arch in todo]
            records = self.store.evaluate([(arch, self.full_images, prefix)
                                           for arch, prefix in zip(todo, prefixes, strict=True)],
                                          self.evaluator.correct_many)
            for arch, prefix, (record, computed) in zip(todo, prefixes, records, strict=True):
                if prefix.images == self.screen_images:
                    self.prefix_errors.append(record.accuracy - prefix.accuracy)
                self.known[arch] = record
                self.promotions_now += computed
                self._counts["promoted"] += 1

    # ----- generations
    def run(self, state: SearchState, on_generation: Callable[[GenerationStats], None] | None
            ) -> list[GenerationStats]:
        s = self.settings
        problem = ArchProblem(self.score, s.objectives, self.constraints)
        seeds = self._initial_seeds()
        self.seeded = len(seeds) == s.population
        if self.seeded:
            self.console.print(f"first population: the best {s.population} of the {len(self.known)} children "
                               "the run's store holds, for this device's latencies", highlight=False)
        algorithm = NSGA2(
            pop_size=s.population,
            n_offsprings=s.population,
            sampling=ArchSampling(self.space, self.is_feasible, seeds=seeds,
                                  spread_by=lambda arch: self.measures(arch).latency_ms),
            crossover=ArchCrossover(self.space, self.is_feasible, s.crossover_prob),
            mutation=ArchMutation(self.space, self.is_feasible, s.mutation_prob),
            eliminate_duplicates=ArchDuplicates(),
        )
        algorithm.setup(problem, termination=("n_gen", s.generations + 1), seed=s.seed, verbose=False)
        show_bar = progress_enabled(s.progress)
        stats: list[GenerationStats] = []
        for generation in range(s.generations + 1):
            self.generation = generation
            began = time.perf_counter()
            self._counts = dict.fromkeys(("evaluated", "cached", "infeasible", "promoted", "skipped"), 0)
            screen = self._predictor_ready(generation)
            algorithm.n_offsprings = s.population * (s.predictor.oversample if screen else 1)
            offspring = algorithm.ask()
            tau = None
            with tqdm(total=len(offspring), desc=f"generation {generation}/{s.generations}", unit="child",
                      disable=not show_bar, leave=False, dynamic_ncols=True) as self._bar:
                if screen:
                    offspring, predicted = self._screen(offspring)
                self.count_new([individual.X[0] for individual in offspring])
                if len(offspring):
                    algorithm.evaluator.eval(problem, offspring)
            self._bar = None
            if screen:
                tau = self._predictor_tau(offspring, predicted)
            if len(offspring):
                algorithm.tell(infills=offspring)
            self._promote()
            self._refresh_population(algorithm)
            stats.append(self._report(generation, len(offspring), time.perf_counter() - began, tau))
            state.generation = max(state.generation, generation)
            state.save(self.out_dir / "state.json")
            if on_generation is not None:
                on_generation(stats[-1])
            patience = self._patience()
            if generation < s.generations and self._stalled(stats, patience):
                key = "stop.seeded_patience" if self.seeded else "stop.patience"
                self.console.print(f"stopping after generation {generation}: the last {patience} generations "
                                   f"added under {s.stop.min_gain:g} hypervolume ({key}=null runs every "
                                   "generation)", highlight=False)
                break
        return stats

    def _patience(self) -> int | None:
        stop = self.settings.stop
        return stop.seeded_patience if self.seeded else stop.patience

    def _stalled(self, stats: Sequence[GenerationStats], patience: int | None) -> bool:
        return (patience is not None and len(stats) > patience
                and stats[-1].hypervolume - stats[-1 - patience].hypervolume < self.settings.stop.min_gain)

    def _initial_seeds(self) -> list[Arch]:
        """The min and max children, then the best children already known (by rank and crowding), so a
        search of another device starts from the run's store instead of from scratch."""
        seeds = [self.space.min(), self.space.max()]
        known = [a for a in self.known if a not in seeds and self.is_feasible(a)]
        if not known:
            return seeds
        F = np.array([minimised(self.estimate(a), self.measures(a), self.settings.objectives) for a in known],
                     dtype=float)
        best = best_by_rank_and_crowding(F, max(0, self.settings.population - len(seeds)))
        return seeds + [known[i] for i in sorted(best)]

    def _refresh_population(self, algorithm: NSGA2) -> None:
        """Survival then ranks the population by today's estimates: promoted children by their count on every
        image, the others by their prefix under the prefix's latest mean error."""
        if algorithm.pop is None:
            return
        for individual in algorithm.pop:
            arch = individual.X[0]
            if arch in self.known and self.is_feasible(arch):
                individual.F = np.array(minimised(self.estimate(arch), self.measures(arch),
                                                  self.settings.objectives), dtype=float)

    # ----- accuracy surrogate
    def _predictor_ready(self, generation: int) -> bool:
        p = self.settings.predictor
        return p.enabled and generation > 0 and len(self._training_set(generation)) >= p.min_train

    def _training_set(self, generation: int) -> list[Arch]:
        # What an uninterrupted run would know here: the prior, and children met before this generation.
        return [a for a, g in self.seen.items() if g < generation]

    def _screen(self, offspring: Population) -> tuple[Population, list[float | None]]:
        """Keep up to `population` offspring that the surrogate ranks best and does not predict dominated
        by the known front by more than `margin` of its error; known children cost nothing and stay.
        Returns them and the predicted accuracy of each kept one (None where it was known)."""
        s = self.settings
        train = self._training_set(self.generation)
        predictor = RidgePredictor(self.space, s.predictor.ridge).fit(train,
                                                                      [self.estimate(a) for a in train])
        archs = [ind.X[0] for ind in offspring]
        guesses = predictor.predict(archs)
        predicted, F = [], []
        for arch, guess in zip(archs, guesses, strict=True):
            known = self.seen.get(arch, self.generation) < self.generation
            predicted.append(None if known else float(guess))
            accuracy = self.estimate(arch) if known else float(guess)
            F.append(minimised(accuracy, self.measures(arch), s.objectives))
        within = [i for i, arch in enumerate(archs) if self.is_feasible(arch)]
        over = [i for i in range(len(archs)) if i not in set(within)]
        best = best_by_rank_and_crowding(np.array([F[i] for i in within], dtype=float).reshape(-1, len(F[0])),
                                         s.population)
        keep = sorted([within[i] for i in best] + over[: max(0, s.population - len(within))])
        front = self._front_vectors(self.generation - 1)
        slack = s.predictor.margin * predictor.loo_rms
        plausible = [i for i in keep if predicted[i] is None or not _dominated(F[i], front, slack)]
        self._counts["skipped"] = len(keep) - len(plausible)
        if self._bar is not None:
            self._bar.total = len(plausible)
            self._bar.refresh()
        return offspring[plausible], [predicted[i] for i in plausible]

    def _front_vectors(self, through: int) -> np.ndarray:
        front = pareto_front(self.ranked(through), self.settings.objectives)
        return np.array([minimised(c.accuracy, c.measures, self.settings.objectives) for c in front],
                        dtype=float).reshape(-1, len(self.settings.objectives))

    def _predictor_tau(self, offspring: Population, predicted: list[float | None]) -> float | None:
        pairs = [(p, self.estimate(ind.X[0])) for ind, p in zip(offspring, predicted, strict=True)
                 if p is not None and ind.X[0] in self.known]
        if len(pairs) < 2:
            return None
        tau = kendall_tau([p for p, _ in pairs], [t for _, t in pairs])
        return None if np.isnan(tau) else float(tau)

    # ----- per-generation report
    def _report(self, generation: int, children: int, seconds: float, tau: float | None) -> GenerationStats:
        met = self.candidates(generation)
        front = pareto_front(self.ranked(generation), ("accuracy", "latency_ms"))
        c = self._counts
        stats = GenerationStats(
            generation=generation, children=children, evaluated=c["evaluated"], cached=c["cached"],
            infeasible=c["infeasible"], front_size=len(front),
            hypervolume=hypervolume([(c.accuracy, c.measures.latency_ms) for c in front],
                                    self.latency_ref_ms),
            best_accuracy=max((c.accuracy for c in front), default=float("nan")),
            fastest_ms=min((c.measures.latency_ms for c in front), default=float("nan")),
            total_evaluations=sum(1 for c in met if c.generation >= 0), seconds=seconds,
            predictor_tau=tau, promoted=c["promoted"], skipped=c["skipped"])
        replayed = generation <= self.replay_through
        write_candidates(self.out_dir / "candidates.jsonl", met)
        if not replayed:
            with open(self.out_dir / "generations.jsonl", "a") as f:
                f.write(json.dumps(asdict(stats)) + "\n")
        tau_text = f", surrogate tau {tau:.2f}" if tau is not None else ""
        self.console.print(
            f"generation {generation}/{self.settings.generations}: {stats.evaluated} evaluated, "
            f"{stats.promoted} on all images, {stats.cached} known, {stats.skipped} predicted dominated, "
            f"{stats.infeasible} over a limit; front {stats.front_size}, hv {stats.hypervolume:.4f}, best "
            f"{100 * stats.best_accuracy:.2f}%, fastest {stats.fastest_ms:.3f} ms{tau_text} "
            f"({seconds:.1f} s{', replayed' if replayed else ''})", highlight=False)
        return stats


def _dominated(point: Sequence[float], front: np.ndarray, slack: float) -> bool:
    """`point` (minimised, accuracy first) is dominated by a front vector even with `slack` more accuracy."""
    if len(front) == 0:
        return False
    lifted = np.asarray(point, dtype=float).copy()
    lifted[0] -= slack
    return bool(np.any(np.all(front <= lifted, axis=1) & np.any(front < lifted, axis=1)))
