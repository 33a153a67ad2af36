"""Batch-level augmentation and normalisation that run wherever the batch lives.

The training loop keeps uint8 batches on the host, copies them with ``non_blocking=True``, and
calls these on the device. Nothing here reads a value back to the host (no ``.item()``, no
data-dependent shapes, no Python loop over the batch), so on a GPU it only queues kernels.
Randomness comes solely from an explicit ``torch.Generator``, never the global RNG, so a run
is reproducible from its generator seed however other code uses ``torch.manual_seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

PaddingMode = Literal["zeros", "reflect"]
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect")


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 ``(x / 255 - mean) / std`` per channel, on the same device."""
    _check_batch(images)
    channels = images.shape[1]
    mean, std = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
    out = images.to(torch.float32, copy=True)  # a copy even for float input: the ops below are in place
    for channel in range(channels):  # C is 1 or 3; the loop is over channels, not samples
        # Python floats reach the kernel as arguments, so there is no host-to-device copy or sync.
        scale = 1.0 / (255.0 * std[channel])
        out[:, channel].mul_(scale).sub_(mean[channel] / std[channel])
    return out


def random_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    padding: int = 4,
    padding_mode: PaddingMode = "zeros",
    flip: bool = True,
) -> torch.Tensor:
    """Per-sample random crop (after virtual padding by ``padding``) and horizontal flip.

    Equivalent to torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip`` on each
    sample, but done as one gather over the batch: each output pixel's source coordinate is
    computed from per-sample shifts, and padding is never materialised. Zero padding fills
    with pixel value 0 (black), as torchvision does. Keeps the dtype (uint8 in, uint8 out).
    """
    _check_batch(images)
    _check_padding(padding, padding_mode)
    batch, _, height, width = images.shape
    if padding_mode == "reflect" and padding >= min(height, width):
        raise ValueError(
            f"reflect padding {padding} needs images larger than {padding}, got {height}x{width}"
        )
    if padding == 0 and not flip:
        return images

    device = images.device
    # Draw on the generator's device (a CUDA generator for CUDA batches keeps this fully async).
    shifts = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device=generator.device)
    shifts = shifts.to(device, non_blocking=True) - padding
    rows = torch.arange(height, device=device) + shifts[0, :, None]
    columns = torch.arange(width, device=device).expand(batch, width)
    if flip:
        flipped = torch.randint(0, 2, (batch, 1), generator=generator, device=generator.device)
        columns = torch.where(flipped.to(device, non_blocking=True).bool(), width - 1 - columns, columns)
    columns = columns + shifts[1, :, None]

    if padding_mode == "reflect":
        return _gather(images, _reflect(rows, height), _reflect(columns, width))
    # Zero padding: read a clamped in-range pixel, then blank the ones that fell outside.
    row_inside = ((rows >= 0) & (rows < height))[:, None, :, None]
    column_inside = ((columns >= 0) & (columns < width))[:, None, None, :]
    out = _gather(images, rows.clamp(0, height - 1), columns.clamp(0, width - 1))
    return out.masked_fill(~(row_inside & column_inside), 0)


def _gather(images: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``out[n, c, i, j] = images[n, c, rows[n, i], columns[n, j]]`` as a single indexing kernel."""
    batch, channels = images.shape[:2]
    device = images.device
    return images[
        torch.arange(batch, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        columns[:, None, None, :],
    ]


class BatchAugment(nn.Module):
    """Training-time transform: random crop + optional flip, then normalisation to float32.

    Holds no tensors, so it works on any device without ``.to()``. Flip should be off for data
    whose meaning changes under mirroring (digits, text) and is on by default for natural
    images and clothing (CIFAR-10, Fashion-MNIST).
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        padding: int = 4,
        padding_mode: PaddingMode = "zeros",
        flip: bool = True,
    ) -> None:
        super().__init__()
        _check_padding(padding, padding_mode)
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        self.padding = padding
        self.padding_mode: PaddingMode = padding_mode
        self.flip = flip

    def forward(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        augmented = random_crop_flip(images, generator, self.padding, self.padding_mode, self.flip)
        return normalize(augmented, self.mean, self.std)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """The evaluation-time transform: normalisation only, with this module's statistics."""
        return normalize(images, self.mean, self.std)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, padding_mode={self.padding_mode!r}, flip={self.flip}"


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    # Mirror without repeating the edge pixel (numpy/torch "reflect"): -1 -> 1, size -> size - 2.
    last = size - 1
    return last - (last - index.abs()).abs()


def _per_channel(values: Sequence[float], what: str, channels: int) -> tuple[float, ...]:
    values = tuple(float(value) for value in values)
    if what == "std" and any(value <= 0 for value in values):
        raise ValueError(f"std must be positive, got {values}")
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(f"{what} has {len(values)} entries but the images have {channels} channels")
    return values


def _check_padding(padding: int, padding_mode: str) -> None:
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")


def _check_batch(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"expected a (N, C, H, W) batch, got shape {tuple(images.shape)}")
