"""An image dataset held entirely in memory as one uint8 NCHW tensor plus int64 labels."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TensorImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images as uint8 ``(N, C, H, W)`` and labels as int64 ``(N,)``.

    Kept as uint8 so host memory and host-to-device copies are 4x smaller than float; the
    conversion and normalisation happen on the device (see ``supernet.data.augment``). Loaders
    recognise this class and slice whole batches out of ``images``/``labels`` directly.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.dim() != 1 or len(labels) != len(images):
            raise ValueError(
                f"labels must be 1-D with {len(images)} entries, got shape {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def select(self, indices: torch.Tensor) -> TensorImageDataset:
        """A new dataset with only ``indices``, copied so the unused rest can be freed."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return TensorImageDataset(self.images.index_select(0, indices), self.labels.index_select(0, indices))

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and (population) std of the pixels in [0, 1] scale."""
        channels = self.images.shape[1]
        total = torch.zeros(channels, dtype=torch.float64)
        total_squares = torch.zeros(channels, dtype=torch.float64)
        # Chunked so a CIFAR-sized dataset doesn't need a float64 copy of itself (~1 GB).
        for chunk in self.images.split(4096):
            pixels = chunk.to(torch.float64) / 255.0
            total += pixels.sum(dim=(0, 2, 3))
            total_squares += pixels.square().sum(dim=(0, 2, 3))
        count = max(1, self.images.numel() // channels)
        mean = total / count
        std = (total_squares / count - mean.square()).clamp(min=0.0).sqrt()
        return tuple(mean.tolist()), tuple(std.tolist())
