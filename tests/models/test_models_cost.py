"""Analytic parameter and FLOP counts (`space.params`, `space.flops`) equal counts on the extracted child."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from supernet.models import Supernet
from supernet.space import Arch, SearchSpace

ARCHS = 12


def counted_macs(model: nn.Module, resolution: int, in_channels: int) -> int:
    """Multiply-accumulates of every conv and linear layer, counted by forward hooks on one image."""
    total = 0

    def conv(m: nn.Conv2d, _inputs, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m: nn.Linear, _inputs, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    handles = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
               for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, resolution, resolution))
    finally:
        for h in handles:
            h.remove()
    return total


def archs(space: SearchSpace, seed: int) -> list[Arch]:
    rng = random.Random(seed)
    return [space.max(), space.min(), *(space.sample(rng) for _ in range(ARCHS))]


@pytest.mark.parametrize("net_name", ["small_net", "ofa_net", "mixed_net"])
def test_params_and_flops_match_the_extracted_child(net_name: str, request) -> None:
    net: Supernet = request.getfixturevalue(net_name)
    space = net.space
    for arch in archs(space, 5):
        child = net.extract(arch)
        assert space.params(arch) == sum(p.numel() for p in child.parameters()), str(arch)
        assert space.flops(arch) == counted_macs(child, arch.resolution, space.spec.in_channels), str(arch)


def test_flops_grow_with_resolution(ofa_space: SearchSpace) -> None:
    arch = ofa_space.min()
    sizes = [ofa_space.flops(Arch(r, arch.stages)) for r in ofa_space.spec.resolutions]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert len({ofa_space.params(Arch(r, arch.stages)) for r in ofa_space.spec.resolutions}) == 1

