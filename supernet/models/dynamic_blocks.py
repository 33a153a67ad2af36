"""The elastic inverted-residual block: the supernet's unit, with the same part names as its static twin."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from supernet.models.static import activation
from supernet.ops import DynamicBatchNorm2d, DynamicDepthwiseConv2d, DynamicPointConv2d, DynamicSqueezeExcite
from supernet.space.layers import LayerSpec


@dataclass(frozen=True)
class SlotSizes:
    """The channel counts the children of a space run one block slot at: where its weights are cut."""

    cin: tuple[int, ...] = ()
    cmid: tuple[int, ...] = ()
    cout: tuple[int, ...] = ()
    se: tuple[int, ...] = ()


class DynamicInvertedResidual(nn.Module):
    """Built at its widest (`widest` is this slot's layer in the max child); runs any smaller setting."""

    def __init__(self, widest: LayerSpec, kernels: tuple[int, ...], kernel_transform: bool,
                 sizes: SlotSizes = SlotSizes()) -> None:
        super().__init__()
        mid = widest.cmid
        self.expand: nn.Module = nn.Identity()
        if widest.expand:
            self.expand = nn.Sequential(
                DynamicPointConv2d(widest.cin, mid, in_sizes=sizes.cin, out_sizes=sizes.cmid),
                DynamicBatchNorm2d(mid, sizes=sizes.cmid), activation(widest.act))
        self.depthwise = nn.Sequential(
            DynamicDepthwiseConv2d(mid, kernels, widest.stride, kernel_transform, channel_sizes=sizes.cmid),
            DynamicBatchNorm2d(mid, sizes=sizes.cmid), activation(widest.act))
        self.se: nn.Module = nn.Identity()
        if widest.se:
            self.se = DynamicSqueezeExcite(mid, widest.se, channel_sizes=sizes.cmid, hidden_sizes=sizes.se)
        self.project = nn.Sequential(
            DynamicPointConv2d(mid, widest.cout, in_sizes=sizes.cmid, out_sizes=sizes.cout),
            DynamicBatchNorm2d(widest.cout, sizes=sizes.cout))
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
