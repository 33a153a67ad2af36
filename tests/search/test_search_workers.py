"""Children counted in forked worker processes: the same counts, the same store, nothing lost on Ctrl-C."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path

import pytest
import torch
from search_support import CountingEvaluator, isolated, search_settings
from test_search_engine import front_rows

from supernet.search import AccuracyEvaluator, run_search
from supernet.search.errors import SearchError
from supernet.search.evaluator import _processes
from supernet.search.settings import EvaluationSettings


def evaluator_with(run_dir: Path, workers: int) -> AccuracyEvaluator:
    return AccuracyEvaluator.from_run(run_dir, search_settings(f"evaluation.workers={workers}").evaluation)


def requests(space, n: int = 6):
    rng = random.Random(3)
    archs = [space.max(), space.min(), *(space.sample(rng) for _ in range(n - 2))]
    return [(arch, i * 10, 96 + i * 10) for i, arch in enumerate(archs)]


def test_workers_count_what_one_process_counts(run_dir: Path, space):
    one, two = evaluator_with(run_dir, 1), evaluator_with(run_dir, 2)
    asked = requests(space)
    assert list(two.correct_many(asked)) == [one.correct(*request) for request in asked]
    assert two.calls == len(asked)
    # the parent resized no image: the workers counted every child
    assert two._inputs == {} and one._inputs != {}
    two.close()


def test_an_abandoned_count_stops_its_workers_and_the_next_call_starts_new_ones(run_dir: Path, space):
    two = evaluator_with(run_dir, 2)
    asked = requests(space)
    others = set(multiprocessing.active_children())  # other tests' evaluators may still hold theirs
    counts = two.correct_many(asked)
    first = next(counts)
    workers = set(multiprocessing.active_children()) - others
    assert len(workers) == 2
    counts.close()
    assert two._pool is None
    for worker in workers:
        worker.join(timeout=10)
    assert not any(worker.is_alive() for worker in workers)
    assert next(iter(two.correct_many(asked))) == first
    two.close()


def test_a_search_in_workers_writes_what_a_search_in_one_process_writes(run_dir: Path, table, tmp_path: Path):
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"workers-{workers}"
        settings = search_settings(*isolated(out), f"evaluation.workers={workers}")
        results[workers] = run_search(run_dir, "cpu", settings, table=table,
                                      evaluator=AccuracyEvaluator.from_run(run_dir, settings.evaluation))
    assert front_rows(results[2]) == front_rows(results[1])
    [one], [two] = ((tmp_path / f"workers-{w}" / "accuracy").glob("*.jsonl") for w in (1, 2))
    assert two.read_bytes() == one.read_bytes()


def test_ctrl_c_while_workers_count_keeps_every_finished_child_and_resumes(run_dir, table, reference,
                                                                           tmp_path: Path, monkeypatch):
    """Ctrl-C arrives while the parent waits on the workers, after 8 children have come back."""
    from supernet.search import workers

    count, left = workers.WorkerPool.count, [8]

    def interrupted(self, requests):
        for hits in count(self, requests):
            if left[0] == 0:
                raise KeyboardInterrupt
            left[0] -= 1
            yield hits

    monkeypatch.setattr(workers.WorkerPool, "count", interrupted)
    settings = search_settings(*isolated(tmp_path), "evaluation.workers=2")
    evaluator = AccuracyEvaluator.from_run(run_dir, settings.evaluation)
    with pytest.raises(KeyboardInterrupt):
        run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator)
    assert evaluator._pool is None  # the queued work was dropped with its workers
    [store] = (tmp_path / "accuracy").glob("*.jsonl")
    assert len(store.read_text().splitlines()) == 8

    monkeypatch.undo()
    fresh = CountingEvaluator(AccuracyEvaluator.from_run(run_dir, settings.evaluation))
    resumed = run_search(run_dir, "cpu", settings, table=table, evaluator=fresh)
    assert front_rows(resumed) == front_rows(reference)
    assert fresh.calls == reference.evaluations_now + reference.promotions_now - 8


def test_workers_on_a_gpu_are_refused_with_the_fix():
    with pytest.raises(SearchError, match=r"evaluation.workers=2: on a cuda device .* evaluation.workers=1"):
        _processes(EvaluationSettings(workers=2), torch.device("cuda"))


def test_workers_share_the_cores_unless_told_their_threads():
    assert _processes(EvaluationSettings(workers=1), torch.device("cpu")) == (1, None)
    workers, threads = _processes(EvaluationSettings(workers=2, threads=3), torch.device("cpu"))
    assert (workers, threads) == (2, 3)
