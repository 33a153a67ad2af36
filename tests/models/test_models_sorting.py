"""Channel sorting: the max child computes the same function, "first k" become the most important k."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import Tensor

from supernet.models import Supernet
from supernet.models.sorting import sort_channels
from supernet.ops import DynamicSqueezeExcite
from supernet.space import Arch, SearchSpace


def outputs(net: Supernet, arch, x: Tensor, train: bool) -> Tensor:
    net = copy.deepcopy(net).train(train)  # train-mode runs update running stats: keep them off `net`
    net.set_active(arch)
    with torch.no_grad():
        return net(x)


def non_increasing(values: Tensor) -> bool:
    return bool((values[1:] <= values[:-1]).all())


def check_sorted(net: Supernet) -> None:
    """Importance, recomputed here from its definition, is non-increasing along every sorted axis."""
    for block in net.elastic_blocks():
        project = block.project[0].weight
        if hasattr(block.expand, "__getitem__"):
            assert non_increasing(project.abs().sum(dim=(0, 2, 3)))
        if isinstance(block.se, DynamicSqueezeExcite):
            assert non_increasing(block.se.fc2_weight.abs().sum(dim=(0, 2, 3)))
    for stage_spec, stage in zip(net.space.spec.stages, net.stages, strict=True):
        if len(stage_spec.widths) > 1:
            assert non_increasing(sum(b.project[0].weight.abs().sum(dim=(1, 2, 3)) for b in stage))


@pytest.mark.parametrize("space_name", ["small_space", "mixed_space", "ofa_space"])
def test_sorting_keeps_the_max_child_and_reorders_the_rest(space_name: str, request, make_supernet) -> None:
    space: SearchSpace = request.getfixturevalue(space_name)
    net = make_supernet(space, 8)
    small = space.spec.resolutions[0]  # the cheapest to run; channels are what sorting is about
    big = Arch(small, space.max().stages)
    batch = 2 if space_name == "ofa_space" else 4
    x = torch.randn(batch, space.spec.in_channels, small, small, generator=torch.Generator().manual_seed(0))
    others = [Arch(small, space.sample(random.Random(seed)).stages) for seed in range(3)]
    before = {train: outputs(net, big, x, train) for train in (False, True)}
    # Populate the eval weight caches of some children first: sorting must invalidate them.
    net.eval()
    with torch.no_grad():
        children_before = {}
        for arch in others:
            net.set_active(arch)
            children_before[arch] = net(x)
    identities = [(name, id(p), p.data_ptr()) for name, p in net.named_parameters()]
    # Whole tensors (the state): a permutation moves values between the blocks of a chunked one.
    values = {name: t.clone() for name, t in net.state_dict().items() if t.is_floating_point()}

    report = sort_channels(net)

    assert [(name, id(p), p.data_ptr()) for name, p in net.named_parameters()] == identities
    blocks = net.elastic_blocks()
    assert report == {
        "blocks": sum(hasattr(b.expand, "__getitem__") for b in blocks),
        "se": sum(isinstance(b.se, DynamicSqueezeExcite) for b in blocks),
        "stages": sum(len(s.widths) > 1 for s in space.spec.stages),
    }
    for name, tensor in net.state_dict().items():  # a permutation moves values, never changes them
        if name not in values:
            continue
        new, old = tensor.flatten().double(), values[name].flatten().double()
        if new.numel() <= 20_000:
            assert torch.equal(new.sort().values, old.sort().values), name
        else:  # sorting millions of values costs seconds; moments tell a permutation from a change too
            torch.testing.assert_close(torch.stack([new.sum(), new.abs().sum(), (new**2).sum()]),
                                       torch.stack([old.sum(), old.abs().sum(), (old**2).sum()]), msg=name)
    for train in (False, True):
        torch.testing.assert_close(outputs(net, big, x, train), before[train], atol=1e-5, rtol=1e-5)
    check_sorted(net)
    changed = 0
    net.eval()
    for arch in others:
        net.set_active(arch)
        with torch.no_grad():
            after = net(x)
            torch.testing.assert_close(after, net.extract(arch)(x), atol=1e-5, rtol=1e-5)
        changed += not torch.allclose(after, children_before[arch], atol=1e-4)
    assert changed >= 2, "sorting left smaller children unchanged"


def test_sorting_twice_changes_nothing(small_space: SearchSpace, make_supernet) -> None:
    net = make_supernet(small_space, 9)
    sort_channels(net)
    once = {k: v.clone() for k, v in net.state_dict().items()}
    sort_channels(net)
    for k, v in net.state_dict().items():
        assert torch.equal(v, once[k]), k


def test_unsorted_supernet_is_not_sorted(small_space: SearchSpace, make_supernet) -> None:
    """The importance check above can fail: a random supernet is not in importance order."""
    net = make_supernet(small_space, 10)
    with pytest.raises(AssertionError):
        check_sorted(net)
