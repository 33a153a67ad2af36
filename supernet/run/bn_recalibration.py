"""Batch-norm recalibration of a child, and the fixed calibration set it uses.

A supernet's running BN statistics are a blur of every child trained, so each child's statistics are
recomputed before it is evaluated or exported: reset, then a cumulative average (momentum=None) over a
fixed set of training images, with only the BN layers in training mode. Nothing is deep-copied: the
supernet's own buffers are overwritten (they are meaningless outside the active child anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def resize_batch(x: Tensor, resolution: int) -> Tensor:
    """Bilinear resize of an NCHW batch to `resolution`², a no-op when it already has that size."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class CalibrationSet:
    """Normalised float image batches, fixed once, with a content hash recorded in cards and logs."""

    batches: tuple[Tensor, ...]
    digest: str

    @classmethod
    def from_batches(cls, batches: Sequence[Tensor]) -> CalibrationSet:
        h = hashlib.sha256()
        for b in batches:
            h.update(b.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return cls(tuple(batches), h.hexdigest()[:16])

    @property
    def num_images(self) -> int:
        return sum(b.shape[0] for b in self.batches)

    def to(self, device: torch.device | str, memory_format: torch.memory_format = torch.contiguous_format
           ) -> CalibrationSet:
        moved = tuple(b.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                      for b in self.batches)
        return CalibrationSet(moved, self.digest)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor], resolution: int | None = None) -> None:
    """Recompute every BN layer's running statistics of `model` (its active child) over `batches`.

    The model is left in eval mode. `resolution` resizes each batch first (children differ in input size).
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    try:
        for x in batches:
            model(resize_batch(x, resolution) if resolution else x)
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        model.eval()
