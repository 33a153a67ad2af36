"""A small trained run (synthetic 16 px data, `small` space at 12/16 px) and a reference search on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from search_support import TRAIN_OVERRIDES, CountingEvaluator, FlopsLatency, isolated, search_settings

from supernet.config import compose_config, space_from_config
from supernet.run.directory import read_run_config
from supernet.search import AccuracyEvaluator, SearchResult, run_search
from supernet.space import SearchSpace
from supernet.train.loop import train


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # The shared 2-core machine: one intra-op thread is faster for these tiny batches, and fixed.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    train(compose_config("train", TRAIN_OVERRIDES), root)
    return root


@pytest.fixture(scope="session")
def space(run_dir: Path) -> SearchSpace:
    return space_from_config(read_run_config(run_dir))


@pytest.fixture(scope="session")
def table(space: SearchSpace) -> FlopsLatency:
    return FlopsLatency(space)


@pytest.fixture
def evaluator(run_dir: Path) -> CountingEvaluator:
    """A fresh evaluator (nothing memoised), counting its calls."""
    return CountingEvaluator(AccuracyEvaluator.from_run(run_dir, search_settings().evaluation))


@pytest.fixture(scope="session")
def reference(run_dir: Path, table: FlopsLatency, tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    """One uninterrupted search, seed 0, that the other tests compare with."""
    out = tmp_path_factory.mktemp("reference")
    evaluator = CountingEvaluator(AccuracyEvaluator.from_run(run_dir, search_settings().evaluation))
    return run_search(run_dir, "cpu", search_settings(*isolated(out)), table=table, evaluator=evaluator)
