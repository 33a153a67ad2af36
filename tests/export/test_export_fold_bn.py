"""BN folding: the folded child computes the same function, has no BN left, and its state dict reloads."""

from __future__ import annotations

import torch
from torch import nn

from supernet.config import compose_config, space_from_config
from supernet.export import fold_batchnorm, fuse_conv_bn
from supernet.models import Supernet, build_child


def _randomise_bn(model: nn.Module, generator: torch.Generator) -> None:
    """Statistics and affine parameters far from the identity, so a wrong fold shows."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator))
                m.running_var.copy_(0.2 + 2 * torch.rand(n, generator=generator))
                m.weight.copy_(0.5 + torch.rand(n, generator=generator))
                m.bias.copy_(0.3 * torch.randn(n, generator=generator))


def _child(arch_pick: str = "max") -> tuple[nn.Module, int]:
    space = space_from_config(compose_config("train", ["data.name=synthetic"]))
    arch = getattr(space, arch_pick)()
    torch.manual_seed(0)  # the supernet's init draws from the global generator: the same weights in any order
    child = Supernet(space).extract(arch).eval()
    _randomise_bn(child, torch.Generator().manual_seed(0))
    return child, arch.resolution


def _biased_convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.bias is not None for m in model.modules())


def test_fuse_conv_bn_matches_conv_then_bn_for_grouped_strided_conv():
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8, bias=True)
    bn = nn.BatchNorm2d(8)
    _randomise_bn(nn.Sequential(conv, bn), g)
    bn.eval()
    x = torch.randn(3, 8, 11, 11, generator=g)
    fused = fuse_conv_bn(conv, bn)
    with torch.no_grad():
        assert (fused(x) - bn(conv(x))).abs().max() < 1e-5
    assert fused.bias is not None and fused.groups == 8 and fused.stride == (2, 2)


def test_folded_child_changes_outputs_by_less_than_1e4():
    for pick in ("max", "min"):
        child, resolution = _child(pick)
        x = torch.randn(4, 1, resolution, resolution, generator=torch.Generator().manual_seed(2))
        folded = fold_batchnorm(child)
        with torch.no_grad():
            ref, out = child(x), folded(x)
        assert ref.abs().max() > 0.1  # the outputs are not trivially zero
        assert (out - ref).abs().max() < 1e-4
        assert count_batchnorms(folded) == 0
        assert count_batchnorms(child) > 0  # the original is left as it was
        # each BN went into the conv before it, which gained a bias
        assert _biased_convs(folded) - _biased_convs(child) == count_batchnorms(child)


def test_folded_state_dict_loads_into_a_folded_fresh_child():
    child, resolution = _child("min")
    folded = fold_batchnorm(child)
    space = space_from_config(compose_config("train", ["data.name=synthetic"]))
    fresh = fold_batchnorm(build_child(space.layers(space.min()))).eval()
    fresh.load_state_dict(folded.state_dict(), strict=True)
    x = torch.randn(2, 1, resolution, resolution, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(fresh(x), folded(x))


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
