"""A deterministic, quickly learnable image classification task for tests and smoke runs.

Each class is a random texture: a small random tile repeated over the image. Samples shift
the texture by a random offset and add contrast jitter and pixel noise. Because the class is
visible in every local patch, convolutional nets with global pooling (what a NAS supernet
builds) learn it within a few dozen steps, while the random shift and noise keep it from
being a pixel lookup: it is solvable, not trivial, for linear models too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from supernet.checks import is_int
from supernet.data.errors import DatasetError
from supernet.data.memory import TensorImageDataset

# Small enough that a 3x3 convolution sees most of a period, which is what makes it easy to learn.
_TILE_SIZE = 3


@dataclass(frozen=True)
class SyntheticSpec:
    num_classes: int = 10
    image_size: int = 16
    channels: int = 3
    train_size: int = 2048
    test_size: int = 512
    noise: float = 0.2  # std of Gaussian pixel noise, in [0, 1] pixel scale
    seed: int | None = None  # None: use the run's data seed


def parse_synthetic_spec(options: Mapping[str, Any] | None, image_size: int | None) -> SyntheticSpec:
    """Validate the ``synthetic`` config dict; unknown keys are errors so typos are not ignored."""
    options = dict(options or {})
    valid = sorted(field.name for field in fields(SyntheticSpec))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DatasetError(f"unknown data.synthetic keys {unknown}; valid keys are {valid}")
    if image_size is not None:
        options.setdefault("image_size", image_size)
    spec = SyntheticSpec(**options)
    for name in ("num_classes", "image_size", "channels", "train_size", "test_size"):
        value = getattr(spec, name)
        if not is_int(value) or value < 1:
            raise DatasetError(f"data.synthetic.{name} must be a positive int, got {value!r}")
    if spec.num_classes < 2:
        raise DatasetError(f"data.synthetic.num_classes must be at least 2, got {spec.num_classes}")
    if not isinstance(spec.noise, int | float) or not spec.noise >= 0:
        raise DatasetError(f"data.synthetic.noise must be a number >= 0, got {spec.noise!r}")
    return spec


def make_synthetic(spec: SyntheticSpec, seed: int) -> tuple[TensorImageDataset, TensorImageDataset]:
    """The (train, test) datasets of the task; both share the class textures."""
    generator = torch.Generator().manual_seed(spec.seed if spec.seed is not None else seed)
    tiles = torch.rand(spec.num_classes, spec.channels, _TILE_SIZE, _TILE_SIZE, generator=generator)
    # Train is drawn before test, so changing test_size never changes the training data.
    train = _draw_samples(tiles, spec.train_size, spec.image_size, spec.noise, generator)
    test = _draw_samples(tiles, spec.test_size, spec.image_size, spec.noise, generator)
    return train, test


def _draw_samples(
    tiles: torch.Tensor, count: int, image_size: int, noise: float, generator: torch.Generator
) -> TensorImageDataset:
    num_classes, channels, tile, _ = tiles.shape
    labels = torch.randint(num_classes, (count,), generator=generator)
    offsets = torch.randint(tile, (2, count), generator=generator)
    # Texture value at (row, column) is tile[(row + offset) % tile, (column + offset) % tile].
    rows = (torch.arange(image_size) + offsets[0, :, None]) % tile
    columns = (torch.arange(image_size) + offsets[1, :, None]) % tile
    texture = tiles[
        labels[:, None, None, None],
        torch.arange(channels)[None, :, None, None],
        rows[:, None, :, None],
        columns[:, None, None, :],
    ]
    contrast = 0.7 + 0.6 * torch.rand(count, 1, 1, 1, generator=generator)
    pixels = (texture - 0.5) * contrast + 0.5 + noise * torch.randn(texture.shape, generator=generator)
    images = (pixels.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return TensorImageDataset(images, labels)
