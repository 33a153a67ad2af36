"""`run_search` end to end on a small trained supernet: the front, limits, determinism, resume, outputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from search_support import CountingEvaluator, isolated, search_settings

from supernet.search import InfeasibleConstraintError, SearchResult, SearchStateError, dominates, run_search
from supernet.search.objectives import minimised
from supernet.space import Arch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def front_rows(result: SearchResult) -> list[tuple[str, float, float]]:
    return [(str(e.candidate.arch), e.candidate.accuracy, e.candidate.measures.latency_ms)
            for e in result.front]


def test_front_is_nondominated_and_dominates_every_other_candidate(reference: SearchResult):
    objectives = reference.settings.objectives
    vectors = {e.candidate.arch: minimised(e.candidate.accuracy, e.candidate.measures, objectives)
               for e in reference.front}
    assert len(vectors) >= 2
    for a, b in itertools.permutations(vectors, 2):
        assert not dominates(vectors[a], vectors[b]), f"{a} dominates {b} on the front"
    # Every evaluated child off the front is dominated by (or equal to) a front child, a child counted on
    # the prefix only at its prefix accuracy corrected by the mean prefix error.
    bias = sum(reference.prefix_errors) / len(reference.prefix_errors)
    for c in reference.candidates:
        if c.arch in vectors:
            continue
        mine = minimised(c.accuracy + (bias if c.images == 96 else 0.0), c.measures, objectives)
        assert any(dominates(v, mine) or v == mine for v in vectors.values()), c.arch


def test_every_front_entry_meets_the_limits(reference: SearchResult, table):
    limit = reference.settings.limits["max_latency_ms"]
    assert all(e.candidate.measures.latency_ms <= limit for e in reference.front)
    # the limit is binding: the max child breaks it, so it was never evaluated
    assert table.predict(reference.space.max()) > limit
    assert reference.space.max() not in {c.arch for c in reference.candidates}
    latencies = [e.candidate.measures.latency_ms for e in reference.front]
    assert latencies == sorted(latencies)


def test_same_seed_gives_the_same_front_and_another_seed_does_not(run_dir, table, reference, evaluator,
                                                                  tmp_path):
    again = run_search(run_dir, "cpu", search_settings(*isolated(tmp_path / "a")), table=table,
                       evaluator=evaluator)
    assert front_rows(again) == front_rows(reference)
    assert [str(c.arch) for c in again.candidates] == [str(c.arch) for c in reference.candidates]
    # another seed starts elsewhere (its first generation is enough to see that)
    settings = search_settings(*isolated(tmp_path / "b"), "seed=1", "generations=0")
    other = run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator)
    first = [str(c.arch) for c in reference.candidates if c.generation == 0]
    assert len(other.candidates) == len(first) == 6
    assert evaluator.calls == (again.evaluations_now + again.promotions_now + other.evaluations_now
                               + other.promotions_now)
    assert [str(c.arch) for c in other.candidates] != first


class Interrupt(Exception):
    pass


def test_interrupted_search_resumes_to_the_uninterrupted_result(run_dir, table, reference, evaluator,
                                                                tmp_path):
    settings = search_settings(*isolated(tmp_path))

    def stop_after_generation_1(stats):
        if stats.generation == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator,
                   on_generation=stop_after_generation_1)
    before = evaluator.calls
    assert json.loads((tmp_path / "state.json").read_text())["generation"] == 1
    assert not (tmp_path / "pareto.json").exists()

    fresh = CountingEvaluator(evaluator.inner.__class__.from_run(run_dir, settings.evaluation))
    resumed = run_search(run_dir, "cpu", settings, table=table, evaluator=fresh)
    assert resumed.resumed_from == 1
    assert front_rows(resumed) == front_rows(reference)
    # only what the interrupted run had not evaluated was evaluated again
    assert before + fresh.calls == reference.evaluations_now + reference.promotions_now
    assert before > 0 and fresh.calls > 0
    written = (tmp_path / "candidates.jsonl").read_bytes()
    assert written == (reference.out_dir / "candidates.jsonl").read_bytes()


def test_resume_under_other_settings_is_refused(run_dir, table, reference, evaluator):
    with pytest.raises(SearchStateError, match=r"other settings \(trajectory.seed: 5 vs 0.*--restart"):
        run_search(run_dir, "cpu", search_settings(*isolated(reference.out_dir), "seed=5"), table=table,
                   evaluator=evaluator)
    assert evaluator.calls == 0


@pytest.mark.parametrize(("override", "pattern"), [
    ("constraints.max_latency_ms=0.1",
     r"constraint max_latency_ms=0.1 cannot be met: the smallest child r12-w0.75:k3e2-\S+ already has "
     r"0.19\d* ms .*raise --max-latency-ms \(constraints.max_latency_ms\) to at least 0.19"),
    ("constraints.max_params=1000",
     r"constraint max_params=1000 cannot be met: .* already has 1\.6\d+e\+05 parameters; raise "
     r"constraints.max_params to at least"),
])
def test_unmeetable_limit_fails_before_any_evaluation(run_dir, table, evaluator, tmp_path, override, pattern):
    with pytest.raises(InfeasibleConstraintError, match=pattern):
        run_search(run_dir, "cpu", search_settings(*isolated(tmp_path), override), table=table,
                   evaluator=evaluator)
    assert evaluator.calls == 0
    assert not tmp_path.joinpath("candidates.jsonl").exists()


def test_output_files_are_written_and_read_back(reference: SearchResult):
    out = reference.out_dir
    pareto = json.loads((out / "pareto.json").read_text())
    assert set(pareto) == {"device", "target", "runtime", "lut", "objectives", "constraints", "seed", "front"}
    assert pareto["device"] == pareto["target"] == "cpu" and pareto["runtime"] is None
    assert pareto["lut"] is None and pareto["seed"] == 0
    assert pareto["objectives"] == ["accuracy", "latency_ms"]
    assert pareto["constraints"] == {"max_latency_ms": 0.45, "max_params": None, "max_flops": None,
                                     "max_memory_bytes": None}
    assert len(pareto["front"]) == len(reference.front)
    for entry, kept in zip(pareto["front"], reference.front, strict=True):
        assert set(entry) == {"arch", "arch_json", "accuracy", "latency_ms", "latency_ms_measured", "params",
                              "flops", "violates_measured"}
        arch = reference.space.parse(entry["arch"])
        assert Arch.from_json(entry["arch_json"]) == arch == kept.candidate.arch
        assert 0.0 <= entry["accuracy"] <= 1.0 and entry["accuracy"] == kept.candidate.accuracy
        assert kept.candidate.images == 192  # the front is evaluated on every validation image
        assert entry["params"] == reference.space.params(arch)
        assert entry["flops"] == reference.space.flops(arch)
        assert entry["latency_ms_measured"] is None and entry["violates_measured"] is False  # stand-in table
    assert [e["latency_ms"] for e in pareto["front"]] == sorted(e["latency_ms"] for e in pareto["front"])

    lines = (out / "candidates.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(reference.candidates) == len({r["arch"] for r in records})
    assert {r["generation"] for r in records} == {0, 1, 2, 3}
    for r in records:
        assert set(r) >= {"arch", "accuracy", "latency_ms", "params", "flops", "generation", "images"}
        assert r["images"] in (96, 192)  # the validation prefix, or all of it
    assert {e["arch"] for e in pareto["front"]} <= {r["arch"] for r in records}

    assert (out / "pareto.png").read_bytes()[:8] == PNG_SIGNATURE
    generations = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [g["generation"] for g in generations] == [0, 1, 2, 3]
    assert generations[-1]["total_evaluations"] == len(records) == sum(g["evaluated"] for g in generations)
    assert sum(g["promoted"] for g in generations) == reference.promotions_now > 0
    # screened by the surrogate from generation 1 on: at most `population` evaluated, the rest skipped
    assert generations[0]["predictor_tau"] is None
    assert any(g["predictor_tau"] is not None for g in generations[1:])
    assert generations[0]["children"] == 6 and all(g["children"] <= 6 for g in generations)
    summary = json.loads((out / "summary.json").read_text())
    assert [g["surrogate_tau"] for g in summary["generations"]] == [g["predictor_tau"] for g in generations]
    # the hypervolume of the front so far never falls: the archive only grows
    hvs = [g["hypervolume"] for g in generations]
    assert hvs == sorted(hvs) and hvs[-1] == pytest.approx(reference.hypervolume)


def test_the_export_reads_the_front(reference: SearchResult, run_dir: Path):
    from supernet.export import select_arch

    chosen = select_arch(reference.space, run_dir, pick="best", target="cpu", search_dir=reference.out_dir)
    best = max(reference.front, key=lambda e: e.candidate.accuracy).candidate
    assert chosen.arch == best.arch


def test_children_over_the_limit_when_measured_are_flagged(run_dir, table, reference, evaluator, tmp_path,
                                                          monkeypatch):
    """A finished search re-run with the same settings replays from its files (no evaluation) and measures
    again; here the measurement is replaced, to put every other front child over the limit."""
    import shutil

    from supernet.search import engine
    from supernet.search.latency import FrontMeasurement

    out = tmp_path / "copy"
    shutil.copytree(reference.out_dir, out)
    limit = reference.settings.limits["max_latency_ms"]

    def measured(model, archs, predicted, *args, **kwargs):
        return FrontMeasurement([p * (1.0 if i % 2 == 0 else 3.0) for i, p in enumerate(predicted)])

    monkeypatch.setattr(engine, "measure_front", measured)
    result = run_search(run_dir, "cpu", search_settings(*isolated(out)), table=table, evaluator=evaluator)
    assert evaluator.calls == 0 and result.evaluations_now == 0
    assert front_rows(result) == front_rows(reference)
    pareto = json.loads((out / "pareto.json").read_text())
    for i, entry in enumerate(pareto["front"]):
        assert entry["latency_ms_measured"] == pytest.approx(entry["latency_ms"] * (1 if i % 2 == 0 else 3))
        assert entry["violates_measured"] == (entry["latency_ms_measured"] > limit)
    assert any(e["violates_measured"] for e in pareto["front"])


def test_a_finished_search_is_extended_by_raising_generations(run_dir, table, reference, evaluator, tmp_path):
    import shutil

    out = tmp_path / "longer"
    shutil.copytree(reference.out_dir, out)
    longer = run_search(run_dir, "cpu", search_settings(*isolated(out), "generations=4"), table=table,
                        evaluator=evaluator)
    assert longer.resumed_from == 3
    assert longer.evaluations_now == len(longer.candidates) - len(reference.candidates) > 0
    assert evaluator.calls == longer.evaluations_now + longer.promotions_now
    assert {c.generation for c in longer.candidates} == {0, 1, 2, 3, 4}
    before = (reference.out_dir / "candidates.jsonl").read_bytes()
    assert (out / "candidates.jsonl").read_bytes().startswith(before)
    assert longer.hypervolume >= reference.hypervolume


def test_a_search_stops_once_its_front_stalls_and_resumes_to_the_same_stop(run_dir, table, evaluator,
                                                                          tmp_path):
    # No generation can add a whole hypervolume, so the search stops after generation `patience`.
    settings = search_settings(*isolated(tmp_path), "stop.patience=1", "stop.min_gain=1")
    stopped = run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator)
    assert [g.generation for g in stopped.generations] == [0, 1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["generations_completed"] == 1 and summary["stopped_early"] is True
    calls = evaluator.calls
    again = run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator)
    assert evaluator.calls == calls and again.evaluations_now == 0
    assert [g.generation for g in again.generations] == [0, 1]
    assert front_rows(again) == front_rows(stopped)


def test_prefix_accuracies_are_corrected_by_the_mean_prefix_error(reference: SearchResult):
    """The summary's prefix error is the mean (all - prefix) accuracy of the children the store holds both
    ways; the files keep raw counts, and the front holds full counts whatever the correction."""
    [store] = reference.out_dir.joinpath("accuracy").glob("*.jsonl")
    records = [json.loads(line) for line in store.read_text().splitlines()]
    counts = {}
    for r in records:
        counts.setdefault(r["arch"], {})[r["images"]] = r["correct"] / r["images"]
    errors = [c[192] - c[96] for c in counts.values() if 96 in c and 192 in c]
    summary = json.loads((reference.out_dir / "summary.json").read_text())
    assert summary["prefix_error"]["children"] == len(errors) == reference.promotions_now > 1
    assert summary["prefix_error"]["mean"] == pytest.approx(sum(errors) / len(errors))
    prefix_only = [c for c in reference.candidates if c.images == 96]
    assert prefix_only and all(c.accuracy == counts[str(c.arch)][96] for c in prefix_only)
    assert {e.candidate.images for e in reference.front} == {192}
