import random

import pytest

from supernet.config import compose_config, space_from_config
from supernet.latency import LatencySettingsError, reachable_layers, restrict_resolutions
from supernet.latency.table import space_hash, space_to_dict
from supernet.space import SearchSpace, SpaceSpec


def _shipped(name: str) -> SearchSpace:
    return space_from_config(compose_config("train", [f"space={name}"]))


def test_tiny_space_key_count_matches_hand_count(tiny_space):
    # per resolution: stem + first block + stage 0 (8 first blocks, 8 later) + stage 1 (2 input widths x 8
    # first blocks, 8 later) + 2 final convs (one per last-stage width) + classifier = 45
    layers = reachable_layers(tiny_space)
    assert len(layers) == 2 * 45
    assert len({layer.key() for layer in layers}) == len(layers)


@pytest.mark.parametrize("name", ["tiny", "small", "ofa_mbv3"])
def test_keys_cover_every_layer_of_sampled_and_extreme_archs(name, tiny_space):
    space = tiny_space if name == "tiny" else _shipped(name)
    keys = {layer.key() for layer in reachable_layers(space)}
    rng = random.Random(0)
    archs = [space.max(), space.min(), *(space.sample(rng) for _ in range(300))]
    used = set()
    for arch in archs:
        for layer in space.layers(arch):
            assert layer.key() in keys, f"{arch}: {layer.key()}"
            used.add(layer.key())
    if name == "tiny":  # small enough that random children reach every key: nothing enumerated is unreachable
        assert used == keys


def test_restricting_resolutions_keeps_only_those(tiny_space):
    restricted = restrict_resolutions(tiny_space, [24])
    assert restricted.spec.resolutions == (24,)
    assert {layer.resolution for layer in reachable_layers(restricted) if layer.kind == "conv"} >= {24}
    assert len(reachable_layers(restricted)) == 45
    with pytest.raises(LatencySettingsError, match=r"resolutions=\[20\].*\[16, 24\]"):
        restrict_resolutions(tiny_space, [20])


@pytest.mark.parametrize("name", ["small", "ofa_mbv3"])
def test_space_dict_round_trips(name):
    spec = _shipped(name).spec
    assert SpaceSpec.from_dict(space_to_dict(spec)) == spec
    assert space_hash(SpaceSpec.from_dict(space_to_dict(spec))) == space_hash(spec)
