"""`Arch`: string and JSON forms round-trip exactly; malformed input raises `ArchError` naming the problem."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from space_support import edited

from supernet.config import CONFIG_DIR
from supernet.space import Arch, ArchError, BlockChoice, SearchSpace, StageChoice

SPACES = {name: SearchSpace.from_yaml(CONFIG_DIR / "space" / f"{name}.yaml")
          for name in ("small", "ofa_mbv3")}


def _child(name: str, seed: int, p: float) -> Arch:
    """A sampled child, mutated with probability p (so extremes and near-parents show up too)."""
    space = SPACES[name]
    return space.mutate(space.sample(random.Random(seed)), random.Random(seed + 1), p)


archs = st.builds(_child, st.sampled_from(sorted(SPACES)), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))


@settings(max_examples=200, deadline=None)
@given(archs)
def test_string_round_trip(arch: Arch) -> None:
    text = str(arch)
    assert Arch.parse(text) == arch
    assert str(Arch.parse(text)) == text


@settings(max_examples=200, deadline=None)
@given(archs)
def test_json_round_trip(arch: Arch) -> None:
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.loads(arch.dumps()) == arch
    # Through real JSON text, as files hold it.
    assert Arch.from_json(json.loads(json.dumps(arch.to_json()))) == arch
    assert Arch.loads(arch.dumps()).dumps() == arch.dumps()


def test_string_form_is_the_documented_one() -> None:
    arch = Arch(128, (StageChoice(1.0, (BlockChoice(3, 4.0), BlockChoice(5, 6.0))),
                      StageChoice(0.75, (BlockChoice(7, 3.0),))))
    assert str(arch) == "r128-w1:k3e4,k5e6-w0.75:k7e3"
    assert arch.depths == (2, 1) and arch.widths == (1.0, 0.75)
    assert arch.kernels == ((3, 5), (7,)) and arch.expands == ((4.0, 6.0), (3.0,))


def test_id_is_stable_and_distinguishes_archs() -> None:
    a, b = Arch.parse("r32-w1:k3e4"), Arch.parse("r32-w1:k5e4")
    assert a.id == Arch.parse("r32-w1.0:k3e4.0").id and len(a.id) == 12
    assert a.id != b.id


@pytest.mark.parametrize(("text", "problem"), [
    ("", "start with r<resolution>"),
    ("128-w1:k3e4", "start with r<resolution>"),
    ("rX-w1:k3e4", "start with r<resolution>"),
    ("r128", "no stages"),
    ("r128-", "stage 0 ''"),
    ("r128-w1", "stage 0 'w1'"),
    ("r128-x1:k3e4", "stage 0 'x1:k3e4'"),
    ("r128-w1:", "stage 0 'w1:'"),
    ("r128-w1:k3e4-w1:k3", "stage 1 block 'k3'"),
    ("r128-w1:k3e4,,k5e4", "stage 0 block ''"),
    ("r128-w1:k3x4", "stage 0 block 'k3x4'"),
    ("r128-w1:e4k3", "stage 0 block 'e4k3'"),
    ("r128-w-1:k3e4", "stage 0 'w'"),
])
def test_malformed_strings_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ArchError, match="arch string") as err:
        Arch.parse(text)
    assert problem in str(err.value)


def test_non_text_is_refused() -> None:
    with pytest.raises(ArchError, match="got int"):
        Arch.parse(128)  # type: ignore[arg-type]


GOOD = {"resolution": 32, "stages": [{"width": 1.0, "kernels": [3, 5], "expands": [4.0, 2.0]}]}


def _with(path: tuple, value) -> dict:
    return edited(json.loads(json.dumps(GOOD)), path, value)


@pytest.mark.parametrize(("data", "problem"), [
    ([], "must be an object"),
    ("r32-w1:k3e4", "must be an object"),
    (_with(("resolution",), KeyError), "missing key 'resolution'"),
    (_with(("stages",), KeyError), "missing key 'stages'"),
    (_with(("resolution",), "32"), "'resolution' must be an integer, got '32'"),
    (_with(("resolution",), 32.5), "'resolution' must be an integer, got 32.5"),
    (_with(("resolution",), True), "'resolution' must be an integer"),
    (_with(("stages",), []), "'stages' must be a non-empty list"),
    (_with(("stages",), {"width": 1}), "'stages' must be a non-empty list"),
    (_with(("stages", 0), 3), "'stages[0]' must be an object"),
    (_with(("stages", 0, "width"), KeyError), "'stages[0]' is missing key 'width'"),
    (_with(("stages", 0, "width"), "wide"), "'stages[0].width' must be a number"),
    (_with(("stages", 0, "kernels"), []), "'stages[0].kernels' must be a non-empty list"),
    (_with(("stages", 0, "expands"), 4), "'stages[0].expands' must be a non-empty list"),
    (_with(("stages", 0, "expands"), [4.0]), "2 kernels but 1 expands"),
    (_with(("stages", 0, "kernels"), [3, 5.5]), "'stages[0].kernels[1]' must be an integer, got 5.5"),
    (_with(("stages", 0, "expands"), [4.0, None]), "'stages[0].expands[1]' must be a number, got None"),
])
def test_malformed_json_names_the_problem(data, problem: str) -> None:
    with pytest.raises(ArchError) as err:
        Arch.from_json(data)
    assert problem in str(err.value)


def test_json_text_that_is_not_json() -> None:
    with pytest.raises(ArchError, match="not valid JSON"):
        Arch.loads("{resolution: 32")


def test_json_allows_extra_keys_beside_the_arch() -> None:
    """An export's arch.json stores the string form and id next to the fields."""
    arch = Arch.from_json(GOOD)
    assert Arch.from_json({"arch": str(arch), "id": arch.id, **arch.to_json()}) == arch
