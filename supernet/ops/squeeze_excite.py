"""Squeeze-and-excite with elastic channels and hidden width; its static twin is torchvision's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

from supernet.ops.base import DynamicOp, copy_out


class DynamicSqueezeExcite(DynamicOp):
    def __init__(self, max_channels: int, max_hidden: int) -> None:
        super().__init__()
        self.max_channels, self.max_hidden = max_channels, max_hidden
        self.fc1_weight = nn.Parameter(torch.empty(max_hidden, max_channels, 1, 1))
        self.fc1_bias = nn.Parameter(torch.zeros(max_hidden))
        self.fc2_weight = nn.Parameter(torch.empty(max_channels, max_hidden, 1, 1))
        self.fc2_bias = nn.Parameter(torch.zeros(max_channels))
        for w in (self.fc1_weight, self.fc2_weight):
            nn.init.kaiming_normal_(w, mode="fan_out")
        self.active_channels, self.active_hidden = max_channels, max_hidden
        self._full = True

    def set_active(self, channels: int, hidden: int) -> None:
        if not (0 < channels <= self.max_channels and 0 < hidden <= self.max_hidden):
            raise ValueError(f"squeeze-excite of at most {self.max_channels}/{self.max_hidden} channels "
                             f"cannot run {channels}/{hidden}")
        self.active_channels, self.active_hidden = channels, hidden
        self._full = channels == self.max_channels and hidden == self.max_hidden

    def _slice(self) -> tuple[Tensor, ...]:
        # Only the dims that shrink are sliced (each slice costs a full-size zero gradient in backward).
        c, h = self.active_channels, self.active_hidden
        full_c, full_h = c == self.max_channels, h == self.max_hidden
        w1 = self.fc1_weight if full_h else self.fc1_weight[:h]
        w2 = self.fc2_weight if full_c else self.fc2_weight[:c]
        # In-dim slices are made contiguous once, rather than by the convolution in forward and backward.
        return (w1 if full_c else w1[:, :c].contiguous(), self.fc1_bias if full_h else self.fc1_bias[:h],
                w2 if full_h else w2[:, :h].contiguous(), self.fc2_bias if full_c else self.fc2_bias[:c])

    def forward(self, x: Tensor) -> Tensor:
        sources = (self.fc1_weight, self.fc1_bias, self.fc2_weight, self.fc2_bias)
        if self._full:  # the parameters as they are: no slice to pay for in forward or backward
            w1, b1, w2, b2 = sources
        else:
            w1, b1, w2, b2 = self.cached((self.active_channels, self.active_hidden), sources, self._slice)
        # Same op sequence as torchvision.ops.SqueezeExcitation, so outputs match bit for bit.
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = F.relu(F.conv2d(scale, w1, b1))
        scale = F.hardsigmoid(F.conv2d(scale, w2, b2))
        return scale * x

    def active_state(self) -> dict[str, Tensor]:
        return dict(zip(("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"), self._slice(), strict=True))

    def to_static(self) -> SqueezeExcitation:
        se = SqueezeExcitation(self.active_channels, self.active_hidden, nn.ReLU, nn.Hardsigmoid)
        se.to(self.fc1_weight.device, self.fc1_weight.dtype).load_state_dict(copy_out(self.active_state()))
        return se
