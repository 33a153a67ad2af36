"""The run's accuracy store: shared by searches and processes, tolerant of a torn line, extended by prefix."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from supernet.search import AccuracyStore, Evaluation

KEY = {"checkpoint": "abc", "validation": "def"}


def _append(directory: str, worker: int, count: int) -> None:
    store = AccuracyStore(directory, KEY)
    for i in range(count):
        store.add(Evaluation(f"child-{worker}-{i}", i, 100))


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append, args=(str(tmp_path), w, 60)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    store = AccuracyStore(tmp_path, KEY)
    expected = sorted(f"child-{w}-{i}" for w in range(2) for i in range(60))
    assert sorted(r.arch for r in store.records) == expected
    assert all(json.loads(line) for line in store.path.read_text().splitlines())


def test_a_torn_last_line_is_skipped_and_mended_by_the_next_writer(tmp_path: Path):
    store = AccuracyStore(tmp_path, KEY)
    store.add(Evaluation("a", 10, 100))
    with open(store.path, "ab") as f:
        f.write(b'{"arch": "b", "corr')  # a writer killed mid-line
    again = AccuracyStore(tmp_path, KEY)
    assert [r.arch for r in again.records] == ["a"]
    again.add(Evaluation("c", 30, 100))
    lines = store.path.read_text().splitlines()
    assert lines[0].startswith('{"arch": "a"') and lines[1] == '{"arch": "b", "corr'
    assert [r.arch for r in AccuracyStore(tmp_path, KEY).records] == ["a", "c"]


def test_another_process_record_is_read_on_a_miss_and_nothing_is_counted_twice(tmp_path: Path):
    mine, theirs = AccuracyStore(tmp_path, KEY), AccuracyStore(tmp_path, KEY)
    theirs.add(Evaluation("x", 7, 50))
    asked = []

    def hits(requests):
        asked.extend(requests)
        return [5 for _ in requests]

    [(record, computed)] = mine.evaluate([("x", 50, None)], hits)
    assert (record, computed, asked) == (Evaluation("x", 7, 50), False, [])
    # a longer count extends the known prefix: only images 50..100 are counted
    [(record, computed)] = mine.evaluate([("x", 100, record)], hits)
    assert (record, computed, asked) == (Evaluation("x", 12, 100), True, [("x", 50, 100)])
    assert theirs.get("x", 100) == Evaluation("x", 12, 100) and theirs.get("x", 50).correct == 7


def test_many_jobs_are_counted_in_one_call_and_recorded_in_job_order(tmp_path: Path):
    store = AccuracyStore(tmp_path, KEY)
    store.add(Evaluation("b", 9, 50))
    asked = []

    def hits(requests):
        asked.append(list(requests))
        return (len(arch) * 10 for arch, _, _ in requests)

    results = list(store.evaluate([("aaa", 50, None), ("b", 50, None), ("cc", 50, None)], hits))
    assert results == [(Evaluation("aaa", 30, 50), True), (Evaluation("b", 9, 50), False),
                       (Evaluation("cc", 20, 50), True)]
    assert asked == [[("aaa", 0, 50), ("cc", 0, 50)]]
    assert [r.arch for r in AccuracyStore(tmp_path, KEY).records] == ["b", "aaa", "cc"]


def test_each_evaluation_key_has_its_own_file_and_says_what_it_is(tmp_path: Path):
    one, other = AccuracyStore(tmp_path, KEY), AccuracyStore(tmp_path, {**KEY, "precision": "bf16"})
    one.add(Evaluation("x", 1, 10))
    assert one.path != other.path and other.get("x", 10) is None
    assert json.loads(one.path.with_suffix(".key.json").read_text()) == KEY


def test_the_calibration_batching_is_part_of_the_key(run_dir: Path, tmp_path: Path):
    """The same calibration images in other batches give other BN statistics, so another store file."""
    from search_support import search_settings

    from supernet.search import AccuracyEvaluator

    settings = [search_settings(f"evaluation.calib_batch_size={size}").evaluation for size in (32, 64, 32)]
    keys = [AccuracyEvaluator.from_run(run_dir, s).key for s in settings]
    assert keys[0]["calibration"] == keys[1]["calibration"]  # the same images
    assert keys[0]["calib_batches"] == [32, 32] and keys[1]["calib_batches"] == [64]
    paths = [AccuracyStore(tmp_path, key).path for key in keys]
    assert paths[0] != paths[1] and paths[0] == paths[2]
