"""Plain-torch building blocks of an extracted child, built from a `LayerSpec`.

They use only torch and torchvision layers (Conv2d, BatchNorm2d, Linear, torchvision's
SqueezeExcitation), so an exported child needs nothing from this project to run. The supernet's
dynamic blocks name their parts the same way, which is what lets extraction copy state by name.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

from supernet.space.layers import LayerSpec

_ACTIVATIONS = {"relu": nn.ReLU, "hswish": nn.Hardswish, "swish": nn.SiLU, "identity": nn.Identity}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int, act: str, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        activation(act),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: 1x1 expand, depthwise kxk, optional squeeze-excite, 1x1 project."""

    def __init__(self, layer: LayerSpec) -> None:
        super().__init__()
        self.expand = (conv_bn_act(layer.cin, layer.cmid, 1, 1, layer.act) if layer.expand else nn.Identity())
        self.depthwise = conv_bn_act(layer.cmid, layer.cmid, layer.kernel, layer.stride, layer.act,
                                     groups=layer.cmid)
        self.se = (SqueezeExcitation(layer.cmid, layer.se, nn.ReLU, nn.Hardsigmoid) if layer.se
                   else nn.Identity())
        self.project = nn.Sequential(nn.Conv2d(layer.cmid, layer.cout, 1, bias=False),
                                     nn.BatchNorm2d(layer.cout))
        self.residual = layer.residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.residual else out


def classifier(cin: int, feature: int, num_classes: int, act: str, dropout: float) -> nn.Sequential:
    """Global pool, optional 1x1 feature mix, dropout, linear."""
    mix = [nn.Conv2d(cin, feature, 1, bias=False), activation(act)] if feature else []
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), *mix, nn.Flatten(1), nn.Dropout(dropout),
                         nn.Linear(feature or cin, num_classes))


def build_layer(layer: LayerSpec, dropout: float = 0.0) -> nn.Module:
    if layer.kind == "conv":
        return conv_bn_act(layer.cin, layer.cout, layer.kernel, layer.stride, layer.act)
    if layer.kind == "mbconv":
        return InvertedResidual(layer)
    if layer.kind == "classifier":
        return classifier(layer.cin, layer.cmid, layer.cout, layer.act, dropout)
    raise ValueError(f"unknown layer kind {layer.kind!r}")


def build_child(layers: list[LayerSpec], dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(*(build_layer(layer, dropout) for layer in layers))
