"""`SearchSpace.validate`: a child of another space is refused with the bad field and the allowed values."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from supernet.space import Arch, ArchError, SearchSpace


def _set_stage(arch: Arch, i: int, **changes) -> Arch:
    stages = list(arch.stages)
    stages[i] = replace(stages[i], **changes)
    return replace(arch, stages=tuple(stages))


def _set_block(arch: Arch, i: int, j: int, **changes) -> Arch:
    blocks = list(arch.stages[i].blocks)
    blocks[j] = replace(blocks[j], **changes)
    return _set_stage(arch, i, blocks=tuple(blocks))


def test_children_of_the_space_pass(small_space: SearchSpace, ofa_space: SearchSpace) -> None:
    for space in (small_space, ofa_space):
        rng = random.Random(0)
        for arch in (space.max(), space.min(), *(space.sample(rng) for _ in range(20))):
            assert space.validate(arch) is arch
            assert space.parse(str(arch)) == arch


@pytest.mark.parametrize(("bad", "field", "allowed"), [
    (lambda a: replace(a, resolution=30), "resolution 30", "{24, 28, 32}"),
    (lambda a: replace(a, stages=a.stages[:2]), "has 2 stages", "has 3"),
    (lambda a: _set_stage(a, 1, width=0.5), "stage 1 width 0.5", "{0.75, 1}"),
    (lambda a: _set_stage(a, 2, blocks=a.stages[2].blocks * 2), "stage 2 depth 6", "{1, 2, 3}"),
    (lambda a: _set_block(a, 0, 1, kernel=7), "stage 0 block 1 kernel 7", "{3, 5}"),
    (lambda a: _set_block(a, 2, 0, expand=6.0), "stage 2 block 0 expand 6", "{2, 3, 4}"),
])
def test_bad_field_and_allowed_values_are_named(space_dict: dict, bad, field: str, allowed: str) -> None:
    space = SearchSpace.from_dict(space_dict)
    arch = bad(space.max())
    with pytest.raises(ArchError) as err:
        space.validate(arch)
    message = str(err.value)
    assert field in message and allowed in message and str(arch) in message


def test_parse_checks_membership(space_dict: dict) -> None:
    space = SearchSpace.from_dict(space_dict)
    assert space.parse("r32-w1:k5e4-w1:k3e4-w0.75:k3e2") == Arch.parse("r32-w1:k5e4-w1:k3e4-w0.75:k3e2")
    with pytest.raises(ArchError, match=r"stage 0 block 0 kernel 7 is not one of \{3, 5\}"):
        space.parse("r32-w1:k7e4-w1:k3e4-w1:k3e4")


def test_set_active_refuses_foreign_archs(small_space: SearchSpace) -> None:
    from supernet.models import Supernet

    net = Supernet(small_space)
    arch = _set_block(small_space.max(), 0, 0, kernel=7)
    with pytest.raises(ArchError, match="kernel 7"):
        net.set_active(arch)
    assert net.active_arch == small_space.max()
