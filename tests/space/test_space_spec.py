"""Space YAML: every way to get it wrong raises `SpaceError` naming the key; good files build."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from space_support import edited

from supernet.config import CONFIG_DIR
from supernet.space import SearchSpace, SpaceError, make_divisible


def test_space_reads_back(space_dict: dict) -> None:
    spec = SearchSpace.from_dict(space_dict).spec
    assert spec.name == "example" and spec.in_channels == 1 and spec.num_classes == 10
    assert spec.resolutions == (24, 28, 32)
    assert [s.channels for s in spec.stages] == [24, 40, 64]
    assert [(s.stride, s.se, s.act) for s in spec.stages] == [(2, False, "relu"), (2, True, "hswish"),
                                                              (2, True, "hswish")]
    assert all(s.kernels == (3, 5) and s.expands == (2.0, 3.0, 4.0) and s.widths == (0.75, 1.0)
               and s.depths == (1, 2, 3) for s in spec.stages)
    assert (spec.head.channels, spec.head.feature, spec.head.dropout) == (256, 512, 0.1)


@pytest.mark.parametrize("name", ["small", "ofa_mbv3"])
def test_shipped_space_reads_back_as_written(name: str) -> None:
    raw = yaml.safe_load((CONFIG_DIR / "space" / f"{name}.yaml").read_text())
    spec = SearchSpace.from_yaml(CONFIG_DIR / "space" / f"{name}.yaml").spec
    assert spec.name == raw["name"] and len(spec.stages) == len(raw["stages"])
    assert [s.channels for s in spec.stages] == [s["channels"] for s in raw["stages"]]
    for stage, node in zip(spec.stages, raw["stages"], strict=True):
        for key, field in (("kernel", "kernels"), ("expand", "expands"), ("depth", "depths"),
                           ("width", "widths")):
            assert getattr(stage, field) == tuple(sorted(node.get(key, raw["choices"][key])))


def test_resolution_range(ofa_space: SearchSpace) -> None:
    assert ofa_space.spec.resolutions == tuple(range(128, 225, 4))


@pytest.mark.parametrize(("path", "value", "key"), [
    # unknown keys, at every level
    (("colour",), "red", "'colour'"),
    (("stem", "kernal"), 3, "'stem.kernal'"),
    (("first_block", "strides"), 1, "'first_block.strides'"),
    (("stages", 1, "depths"), [1], "'stages[1].depths'"),
    (("choices", "kernels"), [3], "'choices.kernels'"),
    (("head", "dropuot"), 0.1, "'head.dropuot'"),
    (("resolutions",), {"min": 24, "max": 32, "stpe": 4}, "'resolutions.stpe'"),
    # missing keys
    (("stem",), KeyError, "'stem'"),
    (("stages",), KeyError, "'stages'"),
    (("head",), KeyError, "'head'"),
    (("resolutions",), KeyError, "'resolutions'"),
    (("stem", "channels"), KeyError, "'stem.channels'"),
    (("stages", 2, "channels"), KeyError, "'stages[2].channels'"),
    (("choices", "expand"), KeyError, "'choices.expand'"),
    (("head", "channels"), KeyError, "'head.channels'"),
    (("resolutions",), {"min": 24, "max": 32}, "'resolutions.step'"),
    # bad values
    (("stages", 1, "act"), "gelu", "'stages[1].act'"),
    (("stem", "act"), "tanh", "'stem.act'"),
    (("head", "act"), "relu6", "'head.act'"),
    (("choices", "kernel"), [3, 4], "'choices.kernel'"),
    (("stem", "kernel"), 2, "'stem.kernel'"),
    (("stages", 0, "stride"), 3, "'stages[0].stride'"),
    (("stages", 0, "channels"), 0, "'stages[0].channels'"),
    (("choices", "depth"), [1, 1], "'choices.depth'"),
    (("choices", "depth"), [1, 2.5], "'choices.depth'"),
    (("choices", "expand"), [], "'choices.expand'"),
    (("choices", "width"), "1.0", "'choices.width'"),
    (("head", "dropout"), 1.0, "'head.dropout'"),
    (("head", "feature"), -1, "'head.feature'"),
    (("resolutions",), {"min": 32, "max": 24, "step": 4}, "'resolutions.max'"),
    (("stages",), [], "'stages'"),
    (("stages", 0), [24, 2], "'stages[0]'"),
    (("choices",), [3, 5], "'choices'"),
])
def test_bad_space_names_the_key(space_dict: dict, path: tuple, value, key: str) -> None:
    with pytest.raises(SpaceError) as err:
        SearchSpace.from_dict(edited(space_dict, path, value))
    assert key in str(err.value)


def test_even_kernel_is_named_where_it_was_written(space_dict: dict) -> None:
    node = edited(copy.deepcopy(space_dict), ("stages", 1, "kernel"), [3, 6])
    with pytest.raises(SpaceError, match=r"'stages\[1\].kernel' must be an odd kernel size .* got 6"):
        SearchSpace.from_dict(node)
    with pytest.raises(SpaceError, match=r"'choices.kernel' must be an odd kernel size .* got 4"):
        SearchSpace.from_dict(edited(space_dict, ("choices", "kernel"), [3, 4]))


def test_bad_activation_lists_the_allowed_ones(space_dict: dict) -> None:
    with pytest.raises(SpaceError, match=r"'stages\[1\].act' must be one of \['relu', 'hswish', 'swish', "
                                         r"'identity'\], got 'gelu'"):
        SearchSpace.from_dict(edited(space_dict, ("stages", 1, "act"), "gelu"))


def test_widths_that_round_to_the_same_channels(space_dict: dict) -> None:
    # 24 * 0.95 = 22.8 and 24 * 1.0 both round to 24 channels at divisor 4.
    assert make_divisible(24 * 0.95, 4) == make_divisible(24, 4) == 24
    node = edited(space_dict, ("stages", 0, "width"), [0.95, 1.0])
    with pytest.raises(SpaceError, match=r"'stages\[0\].width' choices \[0.95, 1.0\] give the same channel "
                                         r"counts \[24, 24\]"):
        SearchSpace.from_dict(node)


def test_yaml_files(tmp_path: Path, space_dict: dict) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(space_dict))
    assert SearchSpace.from_yaml(good).spec == SearchSpace.from_dict(space_dict).spec
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        SearchSpace.from_yaml(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(SpaceError, match="expected a mapping"):
        SearchSpace.from_yaml(listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(edited(space_dict, ("stem", "chanels"), 16)))
    with pytest.raises(SpaceError, match=r"unknown key 'stem.chanels'"):
        SearchSpace.from_yaml(unknown)


@pytest.mark.parametrize(("value", "divisor", "expected"), [
    (24 * 0.75, 4, 20), (40 * 0.75, 4, 32), (16, 8, 16), (3, 8, 8), (100, 8, 104), (91, 8, 88), (7.9, 8, 8),
])
def test_make_divisible(value: float, divisor: int, expected: int) -> None:
    got = make_divisible(value, divisor)
    assert got == expected and got % divisor == 0 and got >= 0.9 * value
