"""Batch norm over the first `active_features` channels of a wider one.

Subclassing `nn.BatchNorm2d` keeps the state-dict layout and lets generic code (BN recalibration,
SyncBatchNorm conversion checks) find it with `isinstance(m, nn.modules.batchnorm._BatchNorm)`. The
affine scale and shift are chunked at the channel counts children use (`supernet.ops.chunked`); the
running statistics are buffers, never trained, and stay whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from supernet.ops.base import DynamicOp, copy_out
from supernet.ops.chunked import ChunkedTensor, normalised_cuts


class DynamicBatchNorm2d(nn.BatchNorm2d, DynamicOp):
    weight = ChunkedTensor()
    bias = ChunkedTensor()

    def __init__(self, max_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 sizes: tuple[int, ...] = ()) -> None:
        # Built without torch's affine parameters, which the chunked ones replace under the same names.
        super().__init__(max_features, eps=eps, momentum=momentum, affine=False)
        del self._parameters["weight"], self._parameters["bias"]
        cuts = (normalised_cuts(sizes, max_features),)
        self.register_chunked("weight", torch.ones(max_features), cuts)
        self.register_chunked("bias", torch.zeros(max_features), cuts)
        self.affine = True
        self.set_active(max_features)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.chunk_grids():  # nn.BatchNorm2d's constructor calls this before the parameters exist
            self.assign_("weight", torch.ones(self.num_features))
            self.assign_("bias", torch.zeros(self.num_features))

    def set_active(self, features: int) -> None:
        if not 0 < features <= self.num_features:
            raise ValueError(f"batch norm of at most {self.num_features} channels cannot run {features}")
        self.active_features = features
        self.plan_chunks({"weight": (features,), "bias": (features,)})

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not self.training:
            mean, var, weight, bias = self.cached((self.active_features,), self._sources(), self._slice)
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        return F.batch_norm(x, *self._slice(), True, self.update_factor(), self.eps)

    def update_factor(self) -> float:
        """Counts the batch and gives the running statistics' blend factor for it, as nn.BatchNorm2d."""
        if not self.track_running_stats:
            return 0.0
        self.num_batches_tracked.add_(1)
        # momentum=None means a cumulative average, the mode BN recalibration uses.
        return 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

    def running_stats(self) -> tuple[Tensor, Tensor]:
        c = self.active_features
        if c == self.num_features:
            return self.running_mean, self.running_var
        return self.running_mean[:c], self.running_var[:c]

    def affine_params(self) -> tuple[Tensor, Tensor]:
        return self.active("weight"), self.active("bias")

    def _slice(self) -> tuple[Tensor, ...]:
        return *self.running_stats(), *self.affine_params()

    def _sources(self) -> tuple[Tensor, ...]:
        return *self.active_blocks(), self.running_mean, self.running_var

    def active_state(self) -> dict[str, Tensor]:
        mean, var, weight, bias = self._slice()
        return {"weight": weight, "bias": bias, "running_mean": mean, "running_var": var,
                "num_batches_tracked": self.num_batches_tracked}

    def to_static(self) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(self.active_features, eps=self.eps, momentum=self.momentum)
        bn.to(self.running_mean.device, self.running_mean.dtype)
        bn.load_state_dict(copy_out(self.active_state()))
        return bn
