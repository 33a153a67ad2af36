"""The search's parts on their own: settings, measures, fronts, operators, predictor, stored files, data."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import torch
from search_support import search_settings

from supernet.config import compose_config
from supernet.data import make_loader
from supernet.errors import SupernetError
from supernet.run.child_eval import child_accuracy, load_run_data
from supernet.run.device import Precision
from supernet.search import (
    ChildMeasures,
    SearchSettings,
    dominates,
    hypervolume,
    nondominated,
    peak_memory_bytes,
)
from supernet.search.evaluator import AccuracyEvaluator
from supernet.search.objectives import Constraint
from supernet.search.operators import ArchCrossover, ArchMutation, ArchSampling, as_objects
from supernet.search.predictor import RidgePredictor, best_by_rank_and_crowding
from supernet.search.settings import EvaluationSettings
from supernet.space import LayerSpec


# ----- settings
@pytest.mark.parametrize(("override", "message"), [
    ("population=2", "population=2: must be at least 4"),
    ("population=abc", "population: Value 'abc' of type 'str' could not be converted to Integer"),
    ("mutation_prob=1.5", "mutation_prob=1.5: must be at most 1"),
    ("evaluation.screen_images=0", "evaluation.screen_images=0: must be at least 1"),
    ("objectives=[accuracy,speed]", "objectives: 'speed' is not one of accuracy, latency_ms"),
    ("objectives=[accuracy,params]", "lacks 'latency_ms'"),
    ("constraints.max_params=-3", "constraints.max_params=-3.0: must be greater than 0"),
    ("measure.front=maybe", "measure.front='maybe': choose one of ['auto', True, False]"),
    ("predictor.no_such_key=1", "Key 'no_such_key' not in 'PredictorSettings'"),
])
def test_bad_settings_name_the_key(override, message):
    with pytest.raises(SupernetError) as err:
        search_settings(override)
    assert message in str(err.value)


def test_the_schema_holds_the_defaults_and_the_yaml_only_overrides():
    settings = search_settings()
    assert isinstance(settings, SearchSettings) and isinstance(settings.evaluation, EvaluationSettings)
    plain = SearchSettings.from_config(compose_config("search"))
    defaults = SearchSettings()
    assert (plain.population, plain.generations, plain.evaluation, plain.predictor, plain.measure) == (
        defaults.population, defaults.generations, defaults.evaluation, defaults.predictor, defaults.measure)
    limited = SearchSettings.from_config(compose_config("search", ["constraints.max_flops=5"]))
    assert plain.limits == {} and limited.limits == {"max_flops": 5.0}


def test_objectives_put_accuracy_and_latency_first():
    settings = search_settings("objectives=[params,latency_ms,accuracy]")
    assert settings.objectives == ["accuracy", "latency_ms", "params"]


# ----- measures
def test_peak_memory_of_a_hand_computed_plan():
    plan = [LayerSpec("conv", 8, 1, 0, 4, 3, 1),  # in 64 + out 256 = 320
            LayerSpec("mbconv", 8, 4, 12, 8, 3, 2, expand=True),  # 256 + max(768 + 192, 192 + 128) = 1216
            LayerSpec("classifier", 4, 8, 0, 10)]  # 128 + 8 + 0 + 10
    assert peak_memory_bytes(plan) == 1216 * 4
    assert peak_memory_bytes(plan, bytes_per_element=2) == 1216 * 2


def test_measures_grow_from_the_min_to_the_max_child(space, table):
    measures = ChildMeasures(space, table)
    small, large = measures(space.min()), measures(space.max())
    for name in ("latency_ms", "params", "flops", "memory_bytes"):
        assert small.get(name) < large.get(name), name
    assert small.params == space.params(space.min()) and large.flops == space.flops(space.max())
    assert Constraint("max_params", small.params).met(small)
    assert not Constraint("max_params", small.params - 1).met(small)


# ----- fronts and hypervolume
def test_nondominated_agrees_with_pairwise_dominance():
    rng = np.random.default_rng(0)
    F = rng.integers(0, 6, size=(40, 2)).astype(float)  # many ties
    expected = [i for i in range(len(F)) if not any(dominates(F[j], F[i]) for j in range(len(F)))]
    assert nondominated(F).tolist() == expected


def test_hypervolume_of_known_fronts():
    assert hypervolume([(0.5, 5.0)], 10.0) == pytest.approx(0.25)
    # two boxes of 0.8x0.2 and 0.4x0.6 overlapping in 0.4x0.2
    assert hypervolume([(0.8, 8.0), (0.4, 4.0)], 10.0) == pytest.approx(0.16 + 0.24 - 0.08)
    assert hypervolume([(0.9, 12.0)], 10.0) == 0.0  # beyond the reference latency
    assert hypervolume([], 10.0) == 0.0


def test_rank_and_crowding_keeps_the_first_front_and_its_extremes():
    F = np.array([[0, 4], [1, 3], [2, 2], [3, 1], [4, 0], [5, 5], [1.1, 3.1]], dtype=float)
    assert sorted(best_by_rank_and_crowding(F, 5)) == [0, 1, 2, 3, 4]
    kept = best_by_rank_and_crowding(F, 2)
    assert sorted(kept) == [0, 4]  # infinite crowding distance at both ends


# ----- operators
def test_operators_make_valid_children_within_the_limit(space, table):
    limit = 0.3
    measures = ChildMeasures(space, table)

    def feasible(arch):
        return measures(arch).latency_ms <= limit

    rng = np.random.default_rng(1)
    X = ArchSampling(space, feasible, seeds=(space.min(), space.max()))._do(None, 12, random_state=rng)
    archs = [x[0] for x in X]
    assert archs[0] == space.min() and space.max() not in archs  # the max child breaks the limit
    assert len(set(archs)) == 12 and all(feasible(a) for a in archs)
    mutated = ArchMutation(space, feasible, 0.5)._do(None, X, random_state=rng)
    pairs = np.stack([X[:6], X[6:]])
    crossed = ArchCrossover(space, feasible, 1.0)._do(None, pairs, random_state=rng)
    children = [x[0] for x in mutated] + [x for x in crossed.reshape(-1)]
    for child in children:
        space.validate(child)
        assert feasible(child)
    assert any(m[0] != x[0] for m, x in zip(mutated, X, strict=True))


def test_initial_population_spreads_over_latency(space, table):
    measures = ChildMeasures(space, table)

    def latency(arch):
        return measures(arch).latency_ms

    def thirds(X):
        values = [latency(x[0]) for x in X]
        lo, hi = latency(space.min()), latency(space.max())
        edges = [lo + (hi - lo) * t / 3 for t in range(4)]
        return [sum(edges[t] <= v <= edges[t + 1] for v in values) for t in range(3)]

    seeds = (space.min(), space.max())
    spread = ArchSampling(space, lambda a: True, seeds, spread_by=latency)._do(
        None, 14, random_state=np.random.default_rng(0))
    uniform = ArchSampling(space, lambda a: True, seeds)._do(None, 14, random_state=np.random.default_rng(0))
    assert len({x[0] for x in spread}) == 14
    assert min(thirds(spread)) >= 4  # 12 children between the extremes, evenly over the range
    assert min(thirds(uniform)) < 4  # uniform draws leave an end of the range thin


def test_operators_are_a_function_of_the_generator_seed(space, table):
    measures = ChildMeasures(space, table)
    sampling = ArchSampling(space, lambda a: measures(a).latency_ms < 1.0)
    first = sampling._do(None, 8, random_state=np.random.default_rng(7))
    again = sampling._do(None, 8, random_state=np.random.default_rng(7))
    other = sampling._do(None, 8, random_state=np.random.default_rng(8))
    assert first.tolist() == again.tolist() != other.tolist()
    assert as_objects(list(first[:, 0])).shape == (8, 1)


# ----- predictor
def test_ridge_predictor_recovers_a_linear_accuracy(space):
    rng = random.Random(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(300)))
    weights = np.random.default_rng(0).normal(size=len(space.encode(archs[0])))
    truth = [float(np.dot(space.encode(a), weights)) for a in archs]
    predictor = RidgePredictor(space, alpha=1e-3).fit(archs[:200], truth[:200])
    assert np.allclose(predictor.predict(archs[200:]), truth[200:], atol=1e-2)


# ----- data and accuracy
def test_validation_images_are_held_out_and_never_test_images(run_dir, evaluator):
    from supernet.run.directory import read_run_config

    data = load_run_data(read_run_config(run_dir))
    assert not set(data.val_indices.tolist()) & set(data.train_indices.tolist())
    inner = evaluator.inner
    val_images = torch.stack([data.val[i][0] for i in range(inner.num_images)])
    assert torch.equal(inner.val_images, val_images)

    def digests(images):
        return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images}

    test_images = torch.cat([x for x, _ in make_loader(data.test, 256, shuffle=False, seed=0, epoch=0)])
    train_images = torch.cat([x for x, _ in make_loader(data.train, 256, shuffle=False, seed=0, epoch=0)])
    assert not digests(inner.val_images) & digests(test_images)
    assert not digests(inner.val_images) & digests(train_images)


def test_evaluator_counts_what_training_validation_counts(run_dir, evaluator, space):
    inner: AccuracyEvaluator = evaluator.inner
    rng = random.Random(3)
    for arch in (space.min(), space.sample(rng), space.sample(rng)):
        batches = zip(inner.val_images.split(64), inner.val_labels.split(64), strict=True)
        expected = child_accuracy(inner.model, arch, inner.calib, batches, inner.mean, inner.std,
                                  torch.device("cpu"), inner.memory_format, Precision("cpu", None))
        assert evaluator.correct(arch) / inner.num_images == pytest.approx(expected, abs=1e-12)
        # a prefix and the rest add up to the whole: a child on the front is extended, not recounted
        assert evaluator.correct(arch, 0, 100) + evaluator.correct(arch, 100) == evaluator.correct(arch)

