"""Supernets with every weight and statistic made non-trivial, so that equality checks can fail."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from supernet.models import Supernet
from supernet.ops import DynamicSqueezeExcite, assign_tensor
from supernet.space import SearchSpace


def randomize(net: nn.Module, seed: int) -> nn.Module:
    """Random BN affine and running stats, SE biases and kernel transforms, and logits of order one.

    Fresh BN layers (mean 0, var 1, scale 1, shift 0) and identity transforms would hide a wrong
    slice of those tensors; the scales stay mild so that activations keep their size through depth.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assign_tensor(m, "weight", 1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                assign_tensor(m, "bias", 0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.1, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
            elif isinstance(m, DynamicSqueezeExcite):
                for name in ("fc1_bias", "fc2_bias"):
                    m.assign_(name, 0.2 * torch.randn(getattr(m, name).shape, generator=g))
        for name, p in net.named_parameters():
            if "transforms" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net



def random_supernet(space: SearchSpace, seed: int) -> Supernet:
    torch.manual_seed(seed)  # the supernet's own initialisation draws from torch's default generator
    net = randomize(Supernet(space), seed)
    net.set_dropout(0.0)  # train-mode comparisons need the same mask on both sides: none
    return net


# Every shape of block: expand ratio 1 beside others (a child then runs without its expand conv), a stage
# with no expand conv at all (its mid channels are its input channels), SE and not, one and several widths.
MIXED = {
    "name": "mixed", "in_channels": 2, "num_classes": 5, "divisor": 4, "resolutions": [16, 20],
    "stem": {"channels": 8, "stride": 1}, "head": {"channels": 24, "feature": 16},
    "choices": {"kernel": [3, 5], "expand": [2, 3], "depth": [1, 2, 3], "width": [0.5, 1.0]},
    "stages": [
        {"channels": 8, "stride": 2, "expand": [1, 2], "se": True},
        {"channels": 16, "stride": 2, "expand": [1], "se": True, "act": "hswish"},
        {"channels": 16, "stride": 1, "width": [1.0]},
        {"channels": 20, "stride": 2, "se": True, "act": "swish"},
    ],
}


@pytest.fixture(scope="session")
def mixed_space() -> SearchSpace:
    return SearchSpace.from_dict(MIXED)


@pytest.fixture(scope="module")
def mixed_net(mixed_space: SearchSpace) -> Supernet:
    return random_supernet(mixed_space, 2)


@pytest.fixture(scope="module")
def small_net(small_space: SearchSpace) -> Supernet:
    return random_supernet(small_space, 0)


@pytest.fixture(scope="module")
def ofa_net(ofa_space: SearchSpace) -> Supernet:
    return random_supernet(ofa_space, 1)


@pytest.fixture(scope="session")
def make_supernet():
    """`make_supernet(space, seed)`: a randomized supernet of any (custom) space, dropout off."""
    return random_supernet
