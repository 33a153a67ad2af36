"""The elastic inverted-residual block: the supernet's unit, with the same part names as its static twin."""

from __future__ import annotations

from torch import Tensor, nn

from supernet.models.static import activation
from supernet.ops import DynamicBatchNorm2d, DynamicDepthwiseConv2d, DynamicPointConv2d, DynamicSqueezeExcite
from supernet.space.layers import LayerSpec


class DynamicInvertedResidual(nn.Module):
    """Built at its widest (`widest` is this slot's layer in the max child); runs any smaller setting."""

    def __init__(self, widest: LayerSpec, kernels: tuple[int, ...], kernel_transform: bool) -> None:
        super().__init__()
        mid = widest.cmid
        self.expand: nn.Module = nn.Identity()
        if widest.expand:
            self.expand = nn.Sequential(DynamicPointConv2d(widest.cin, mid), DynamicBatchNorm2d(mid),
                                        activation(widest.act))
        self.depthwise = nn.Sequential(DynamicDepthwiseConv2d(mid, kernels, widest.stride, kernel_transform),
                                       DynamicBatchNorm2d(mid), activation(widest.act))
        self.se: nn.Module = DynamicSqueezeExcite(mid, widest.se) if widest.se else nn.Identity()
        self.project = nn.Sequential(DynamicPointConv2d(mid, widest.cout), DynamicBatchNorm2d(widest.cout))
        self.residual = widest.residual
        # A child whose expand ratio is 1 has no expansion conv (as in its static twin): skip ours.
        self.use_expand = widest.expand

    def set_active(self, layer: LayerSpec) -> None:
        self.use_expand = layer.expand
        if layer.expand:
            self.expand[0].set_active(layer.cin, layer.cmid)
            self.expand[1].set_active(layer.cmid)
        self.depthwise[0].set_active(layer.cmid, layer.kernel)
        self.depthwise[1].set_active(layer.cmid)
        if isinstance(self.se, DynamicSqueezeExcite):
            self.se.set_active(layer.cmid, layer.se)
        self.project[0].set_active(layer.cmid, layer.cout)
        self.project[1].set_active(layer.cout)

    def inactive_children(self) -> tuple[str, ...]:
        """Parts the active setting does not run, and so has no state for in its static twin."""
        return () if self.use_expand else ("expand",)

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x) if self.use_expand else x)))
        return x + out if self.residual else out
