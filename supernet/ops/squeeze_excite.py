"""Squeeze-and-excite with elastic channels and hidden width; its static twin is torchvision's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

from supernet.ops.base import DynamicOp, copy_out
from supernet.ops.chunked import ChunkedTensor, normalised_cuts


class DynamicSqueezeExcite(DynamicOp):
    """`channel_sizes` / `hidden_sizes`: the counts children use (block boundaries; any count still runs)."""

    fc1_weight = ChunkedTensor()
    fc1_bias = ChunkedTensor()
    fc2_weight = ChunkedTensor()
    fc2_bias = ChunkedTensor()

    def __init__(self, max_channels: int, max_hidden: int, channel_sizes: tuple[int, ...] = (),
                 hidden_sizes: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.max_channels, self.max_hidden = max_channels, max_hidden
        fc1_weight = torch.empty(max_hidden, max_channels, 1, 1)
        fc2_weight = torch.empty(max_channels, max_hidden, 1, 1)
        for w in (fc1_weight, fc2_weight):
            nn.init.kaiming_normal_(w, mode="fan_out")
        c_cuts = normalised_cuts(channel_sizes, max_channels)
        h_cuts = normalised_cuts(hidden_sizes, max_hidden)
        self.register_chunked("fc1_weight", fc1_weight, (h_cuts, c_cuts))
        self.register_chunked("fc1_bias", torch.zeros(max_hidden), (h_cuts,))
        self.register_chunked("fc2_weight", fc2_weight, (c_cuts, h_cuts))
        self.register_chunked("fc2_bias", torch.zeros(max_channels), (c_cuts,))
        self.set_active(max_channels, max_hidden)

    def set_active(self, channels: int, hidden: int) -> None:
        if not (0 < channels <= self.max_channels and 0 < hidden <= self.max_hidden):
            raise ValueError(f"squeeze-excite of at most {self.max_channels}/{self.max_hidden} channels "
                             f"cannot run {channels}/{hidden}")
        self.active_channels, self.active_hidden = channels, hidden
        self.plan_chunks({"fc1_weight": (hidden, channels), "fc1_bias": (hidden,),
                          "fc2_weight": (channels, hidden), "fc2_bias": (channels,)})

    def _slice(self) -> tuple[Tensor, ...]:
        w1, w2 = self.active("fc1_weight"), self.active("fc2_weight")
        # Counts between two cuts leave strided slices: made contiguous once, rather than by the
        # convolution in forward and again in backward.
        return w1.contiguous(), self.active("fc1_bias"), w2.contiguous(), self.active("fc2_bias")

    def forward(self, x: Tensor) -> Tensor:
        config = (self.active_channels, self.active_hidden)
        w1, b1, w2, b2 = self.cached(config, self.active_blocks(), self._slice)
        # Same op sequence as torchvision.ops.SqueezeExcitation, so outputs match bit for bit.
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = F.relu(F.conv2d(scale, w1, b1))
        scale = F.hardsigmoid(F.conv2d(scale, w2, b2))
        return scale * x

    def active_state(self) -> dict[str, Tensor]:
        return dict(zip(("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"), self._slice(), strict=True))

    def to_static(self) -> SqueezeExcitation:
        se = SqueezeExcitation(self.active_channels, self.active_hidden, nn.ReLU, nn.Hardsigmoid)
        like = self.blocks("fc1_weight")[0]
        se.to(like.device, like.dtype).load_state_dict(copy_out(self.active_state()))
        return se
