"""`extract(arch)` is the supernet's child, in plain torch layers holding their own copies of the weights."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

from supernet.models import Supernet, active_state_dict
from supernet.ops import DynamicOp
from supernet.space import Arch, SearchSpace

ATOL = 1e-5
SMALL_ARCHS = 30
OFA_ARCHS = 25


def seeded_arch(space: SearchSpace, seed: int, resolutions: int | None = None) -> Arch:
    """Seed 0 is the max child, seed 1 the min, others random; OFA is kept to its smallest resolutions."""
    arch = space.max() if seed == 0 else space.min() if seed == 1 else space.sample(random.Random(seed))
    if resolutions is not None:
        arch = Arch(space.spec.resolutions[seed % resolutions], arch.stages)
    return space.validate(arch)


def storages(tensors) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tensors}


def check_child(net: Supernet, arch: Arch, batch: int = 2) -> None:
    space = net.space
    x = torch.randn(batch, space.spec.in_channels, arch.resolution, arch.resolution,
                    generator=torch.Generator().manual_seed(arch.resolution))
    net.eval()
    child = net.extract(arch)
    assert not child.training

    # plain torch only: no dynamic op anywhere, every leaf a torch or torchvision layer
    assert not any(isinstance(m, DynamicOp) for m in child.modules())
    for m in child.modules():
        if not list(m.children()):
            assert type(m).__module__.startswith(("torch.nn", "torchvision")), type(m)
    supernet_storages = storages(itertools.chain(net.parameters(), net.buffers()))
    assert not supernet_storages & storages(child.state_dict().values())

    net.set_active(arch)
    with torch.no_grad():
        expected, got = net(x), child(x)
    assert got.shape == (batch, space.spec.num_classes)
    assert (expected - got).abs().max() < ATOL
    assert expected.abs().max() > 0.1, "outputs too small for the tolerance to mean anything"

    # train mode: batch statistics, and the running statistics both sides update must stay equal
    net.train()
    child.train()
    for m in child.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0  # the child is built with the space's dropout; the supernet runs with none here
    expected, got = net(x), child(x)
    assert (expected - got).abs().max() < ATOL
    for static, dynamic in zip(child, net.active_modules(), strict=True):
        ours = active_state_dict(dynamic)
        for name, tensor in static.state_dict().items():
            torch.testing.assert_close(tensor, ours[name], atol=ATOL, rtol=1e-5, msg=name)
    net.eval()


@pytest.mark.parametrize("seed", range(SMALL_ARCHS))
def test_small_space_children(small_net: Supernet, seed: int) -> None:
    check_child(small_net, seeded_arch(small_net.space, seed))


@pytest.mark.parametrize("seed", range(OFA_ARCHS))
def test_ofa_space_children(ofa_net: Supernet, seed: int) -> None:
    check_child(ofa_net, seeded_arch(ofa_net.space, seed, resolutions=3))


@pytest.mark.parametrize("seed", range(12))
def test_mixed_space_children(mixed_net: Supernet, seed: int) -> None:
    """Includes children whose expand ratio is 1: the block then runs without its expand conv."""
    check_child(mixed_net, seeded_arch(mixed_net.space, seed))


def test_mixed_space_has_blocks_without_expand(mixed_net: Supernet) -> None:
    space = mixed_net.space
    first_stage = 2  # after the stem and the fixed first block... of which this space has only the stem
    assert space.spec.first_block is None and first_stage == 1 + 1
    assert not space.layers(space.min())[1].expand  # stage 0 at expand ratio 1: no expand conv
    assert space.layers(space.max())[1].expand


def test_extract_leaves_the_active_child_and_mode_alone(small_net: Supernet) -> None:
    space = small_net.space
    active = space.sample(random.Random(7))
    small_net.set_active(active)
    small_net.train()
    child = small_net.extract(space.min())
    assert small_net.active_arch == active and child.training
    small_net.eval()
    assert not small_net.extract(space.min()).training


def test_extract_keeps_dtype(small_space: SearchSpace, make_supernet) -> None:
    net = make_supernet(small_space, 3).double().eval()
    arch = small_space.sample(random.Random(3))
    child = net.extract(arch)
    assert {p.dtype for p in child.parameters()} == {torch.float64}
    x = torch.randn(2, 1, arch.resolution, arch.resolution, dtype=torch.float64)
    net.set_active(arch)
    with torch.no_grad():
        torch.testing.assert_close(child(x), net(x), atol=1e-12, rtol=1e-12)


def test_eval_forward_sees_an_optimizer_step(small_net: Supernet, small_space: SearchSpace) -> None:
    """The supernet-level view of the weight cache: a trained step shows in the next no-grad forward."""
    net = small_net
    arch = small_space.sample(random.Random(11))
    x = torch.randn(4, 1, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    net.set_active(arch)
    net.eval()
    with torch.no_grad():
        before = net(x)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    net.train()
    (net(x) ** 2).mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    net.eval()
    with torch.no_grad():
        after = net(x)
        reference = net.extract(arch)(x)
    assert (after - before).abs().max() > 1e-3
    assert (after - reference).abs().max() < ATOL
