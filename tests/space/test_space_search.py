"""Sampling, mutation, crossover, counting and encoding of a search space, checked against brute force."""

from __future__ import annotations

import itertools
import random

import pytest

from supernet.space import Arch, BlockChoice, LayerSpec, SearchSpace, StageChoice

TINY = {
    "name": "tiny", "in_channels": 1, "num_classes": 3, "divisor": 4, "resolutions": [16, 20],
    "stem": {"channels": 8, "stride": 2}, "head": {"channels": 16, "feature": 0},
    "choices": {"kernel": [3, 5], "expand": [2, 3], "depth": [1, 2], "width": [0.5, 1.0]},
    "stages": [
        {"channels": 8, "stride": 2},
        {"channels": 12, "stride": 1, "se": True, "kernel": [3], "expand": [2, 4], "width": [1.0]},
    ],
}


@pytest.fixture(scope="module")
def tiny() -> SearchSpace:
    return SearchSpace.from_dict(TINY)


def all_children(space: SearchSpace) -> list[Arch]:
    """Every child, enumerated independently of `size()` and `sample()`."""
    per_stage = []
    for s in space.spec.stages:
        options = []
        for width, depth in itertools.product(s.widths, s.depths):
            for blocks in itertools.product(itertools.product(s.kernels, s.expands), repeat=depth):
                options.append(StageChoice(width, tuple(BlockChoice(k, e) for k, e in blocks)))
        per_stage.append(options)
    return [Arch(r, stages) for r in space.spec.resolutions for stages in itertools.product(*per_stage)]


def test_size_is_a_brute_force_count(tiny: SearchSpace) -> None:
    children = all_children(tiny)
    assert len(set(children)) == len({str(a) for a in children}) == len(children)
    assert tiny.size() == len(children) == 2 * (2 * (4 + 16)) * (2 + 4)


def test_sample_reaches_every_child_and_nothing_else(tiny: SearchSpace) -> None:
    rng = random.Random(0)
    seen = {tiny.sample(rng) for _ in range(20000)}
    assert seen == set(all_children(tiny))


def test_encode_has_fixed_length_and_tells_children_apart(tiny: SearchSpace) -> None:
    children = all_children(tiny)
    codes = [tuple(tiny.encode(a)) for a in children]
    length = 2 + (2 + 2 + 2 * (2 + 2)) + (1 + 2 + 2 * (1 + 2))
    assert {len(c) for c in codes} == {length}
    assert len(set(codes)) == len(children)
    assert all(set(c) <= {0.0, 1.0} for c in codes)


@pytest.mark.parametrize("space_name", ["small_space", "ofa_space", "tiny"])
def test_encode_length_is_fixed_on_shipped_spaces(space_name: str, request) -> None:
    space = request.getfixturevalue(space_name)
    rng = random.Random(1)
    children = (space.max(), space.min(), *(space.sample(rng) for _ in range(50)))
    lengths = {len(space.encode(a)) for a in children}
    assert len(lengths) == 1


@pytest.mark.parametrize("space_name", ["small_space", "ofa_space", "tiny"])
def test_operators_give_valid_children_deterministically(space_name: str, request) -> None:
    space = request.getfixturevalue(space_name)
    for seed in range(40):
        a, b = space.sample(random.Random(seed)), space.sample(random.Random(seed + 1000))
        assert a == space.sample(random.Random(seed))
        for p in (0.1, 0.5, 1.0):
            child = space.mutate(a, random.Random(seed), p)
            assert space.validate(child) == space.mutate(a, random.Random(seed), p)
        mixed = space.crossover(a, b, random.Random(seed))
        assert space.validate(mixed) == space.crossover(a, b, random.Random(seed))


def test_mutate_with_zero_probability_is_the_identity(small_space: SearchSpace) -> None:
    rng = random.Random(2)
    for _ in range(100):
        arch = small_space.sample(rng)
        assert small_space.mutate(arch, rng, 0.0) == arch


def test_mutate_changes_children(small_space: SearchSpace) -> None:
    rng = random.Random(3)
    parents = [small_space.sample(rng) for _ in range(50)]
    assert sum(small_space.mutate(a, rng, 0.3) != a for a in parents) > 25
    assert sum(small_space.mutate(a, rng, 1.0) != a for a in parents) > 40


def test_crossover_takes_every_gene_from_a_parent(small_space: SearchSpace) -> None:
    rng = random.Random(4)
    for _ in range(100):
        a, b = small_space.sample(rng), small_space.sample(rng)
        child = small_space.crossover(a, b, rng)
        assert child.resolution in (a.resolution, b.resolution)
        for sc, sa, sb in zip(child.stages, a.stages, b.stages, strict=True):
            assert sc.width in (sa.width, sb.width) and sc.depth in (sa.depth, sb.depth)
            for j, block in enumerate(sc.blocks):
                assert block in [s.blocks[j] for s in (sa, sb) if j < s.depth]
        assert small_space.crossover(a, a, rng) == a


def test_extremes(small_space: SearchSpace) -> None:
    big, small = small_space.max(), small_space.min()
    spec = small_space.spec
    assert (big.resolution, small.resolution) == (max(spec.resolutions), min(spec.resolutions))
    for s, b, m in zip(spec.stages, big.stages, small.stages, strict=True):
        assert (b.width, b.depth) == (max(s.widths), max(s.depths))
        assert (m.width, m.depth) == (min(s.widths), min(s.depths))
        assert set(b.blocks) == {BlockChoice(max(s.kernels), max(s.expands))}
        assert set(m.blocks) == {BlockChoice(min(s.kernels), min(s.expands))}
    rng = random.Random(5)
    for arch in (small_space.sample(rng) for _ in range(50)):
        assert small_space.params(small) <= small_space.params(arch) <= small_space.params(big)
        assert small_space.flops(small) <= small_space.flops(arch) <= small_space.flops(big)


def test_layer_plan_is_consistent(small_space: SearchSpace, ofa_space: SearchSpace) -> None:
    for space in (small_space, ofa_space):
        rng = random.Random(6)
        for arch in (space.max(), space.min(), *(space.sample(rng) for _ in range(20))):
            layers = space.layers(arch)
            assert layers[0].resolution == arch.resolution and layers[0].cin == space.spec.in_channels
            assert layers[-1].kind == "classifier" and layers[-1].cout == space.spec.num_classes
            assert len(layers) == 3 + (space.spec.first_block is not None) + sum(arch.depths)
            for prev, layer in itertools.pairwise(layers):
                assert layer.cin == prev.cout and layer.resolution == prev.out_resolution
                if layer.residual:
                    assert layer.stride == 1 and layer.cin == layer.cout
            for layer in layers:
                assert LayerSpec.from_key(layer.key()) == layer
