"""A child's training step touches only its own weights: the parameters that receive a gradient add up
to the extracted child's parameters, so neither the backward pass nor the optimizer pays for the rest of
the supernet. Two things a child runs through are stored bigger than it sees them: each depthwise
channel keeps the largest kernel (a smaller one is computed from it), and the kernel-transform matrices
are parameters of the supernet only."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from supernet.models import Supernet
from supernet.models.supernet import channel_counts
from supernet.ops import DynamicDepthwiseConv2d
from supernet.space import Arch, SearchSpace


def kernel_extras(net: Supernet) -> int:
    """Elements beyond the child's own that its elastic kernels are computed from: the rest of each
    active channel's largest kernel, and the transform matrices they pass through."""
    convs = [block.depthwise[0] for block in net.active_modules() if hasattr(block, "depthwise")]
    total = 0
    for conv in convs:
        if isinstance(conv, DynamicDepthwiseConv2d):
            total += conv.active_channels * (conv.max_kernel**2 - conv.active_kernel**2)
            total += sum(conv.transforms[name].numel() for _, name in conv._chain) if conv.transforms else 0
    return total


@pytest.mark.parametrize("space_name", ["small_space", "mixed_space", "ofa_space"])
def test_gradients_cover_exactly_the_child(space_name: str, request, make_supernet) -> None:
    space: SearchSpace = request.getfixturevalue(space_name)
    net = make_supernet(space, 3).train()
    rng = random.Random(4)
    for arch in (space.min(), space.max(), *(space.sample(rng) for _ in range(4))):
        arch = Arch(space.spec.resolutions[0], arch.stages)
        net.zero_grad(set_to_none=True)
        net.set_active(arch)
        x = torch.randn(2, space.spec.in_channels, arch.resolution, arch.resolution)
        F.cross_entropy(net(x), torch.zeros(2, dtype=torch.long)).backward()
        with_grad = sum(p.numel() for p in net.parameters() if p.grad is not None)
        child = sum(p.numel() for p in net.extract(arch).parameters())
        assert with_grad == child + kernel_extras(net), str(arch)


@pytest.mark.parametrize("space_name", ["small_space", "mixed_space", "ofa_space"])
def test_every_size_a_child_runs_ends_a_block(space_name: str, request) -> None:
    """Channel counts come from the children that cover the space; any sampled child's are among them."""
    space: SearchSpace = request.getfixturevalue(space_name)
    counts = channel_counts(space)
    offset = 2 if space.spec.first_block is not None else 1
    rng = random.Random(5)
    for arch in (space.min(), space.max(), *(space.sample(rng) for _ in range(50))):
        layers = space.layers(arch)
        slots = [(i, j) for i, stage in enumerate(arch.stages) for j in range(len(stage.blocks))]
        for slot, layer in zip(slots, layers[offset:-2], strict=True):
            sizes = counts.blocks[slot]
            assert layer.cin in sizes.cin and layer.cmid in sizes.cmid and layer.cout in sizes.cout, slot
            assert layer.se in sizes.se or layer.se == 0, slot
        assert layers[-2].cin in counts.final_in
