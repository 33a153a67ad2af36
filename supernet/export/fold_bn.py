"""Fold each eval-mode batch norm into the convolution before it.

In eval mode BN is a per-channel affine map y = (x - mean) * s + beta with s = gamma / sqrt(var + eps),
so a conv followed by BN equals one conv with weight * s and bias (b - mean) * s + beta.
The folded model does one op less per block and exports to runtimes that lack fused BN; its BN layers
become `nn.Identity`, which keeps module names (and so the state-dict keys of everything else) unchanged.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` with every Conv2d → BatchNorm2d pair (adjacent in an nn.Sequential) fused.

    Works on freshly built (untrained) models too, which is how a folded state dict is loaded back:
    fold the structure first, then `load_state_dict`.
    """
    folded = copy.deepcopy(model)
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and _foldable(bn, conv):
                module._modules[first] = fuse_conv_bn(conv, bn)
                module._modules[second] = nn.Identity()
    return folded


def _foldable(bn: nn.Module, conv: nn.Conv2d) -> bool:
    return (isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels and bn.track_running_stats
            and bn.running_mean is not None)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One Conv2d (with bias) equal to `bn(conv(x))` with `bn` in eval mode; computed in float64."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused.to(device=conv.weight.device, dtype=conv.weight.dtype)
    gamma = bn.weight.double() if bn.affine else torch.ones_like(bn.running_var, dtype=torch.float64)
    beta = bn.bias.double() if bn.affine else torch.zeros_like(bn.running_mean, dtype=torch.float64)
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
    fused.bias.copy_((bias - bn.running_mean.double()) * scale + beta)
    return fused.train(conv.training)
