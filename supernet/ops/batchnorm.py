"""Batch norm over the first `active_features` channels of a wider one.

Subclassing `nn.BatchNorm2d` keeps the state-dict layout and lets generic code (BN recalibration,
SyncBatchNorm conversion checks) find it with `isinstance(m, nn.modules.batchnorm._BatchNorm)`.
At full width it runs the parent's forward unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from supernet.ops.base import DynamicOp, copy_out


class DynamicBatchNorm2d(nn.BatchNorm2d, DynamicOp):
    def __init__(self, max_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(max_features, eps=eps, momentum=momentum)
        self.active_features = max_features

    def set_active(self, features: int) -> None:
        if not 0 < features <= self.num_features:
            raise ValueError(f"batch norm of at most {self.num_features} channels cannot run {features}")
        self.active_features = features

    def forward(self, x: Tensor) -> Tensor:
        c = self.active_features
        if c == self.num_features:
            return super().forward(x)
        self._check_input_dim(x)
        if not self.training:
            sources = (self.weight, self.bias, self.running_mean, self.running_var)
            mean, var, weight, bias = self.cached((c,), sources, self._slice)
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        factor = 0.0
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            # momentum=None means a cumulative average, the mode BN recalibration uses.
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, *self._slice(), True, factor, self.eps)

    def _slice(self) -> tuple[Tensor, ...]:
        c = self.active_features
        return self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c]

    def active_state(self) -> dict[str, Tensor]:
        c = self.active_features
        return {"weight": self.weight[:c], "bias": self.bias[:c], "running_mean": self.running_mean[:c],
                "running_var": self.running_var[:c], "num_batches_tracked": self.num_batches_tracked}

    def to_static(self) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(self.active_features, eps=self.eps, momentum=self.momentum)
        bn.to(self.weight.device, self.weight.dtype).load_state_dict(copy_out(self.active_state()))
        return bn
