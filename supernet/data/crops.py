"""Per-image crops of decoded photographs: the training random resized crop and the evaluation centre crop.

The training crop of an image is a pure function of its ``SampleKey`` (seed, step, index), never of a
shared random state, so a resumed run, a run on more processes and a loader with more workers decode
exactly the same pixels for the same step.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torchvision.transforms.functional as TF
from PIL import Image


class SampleKey(NamedTuple):
    """What a training sample is asked for by: the run's seed, the optimizer step and the dataset index."""

    seed: int
    step: int
    index: int


class CropBox(NamedTuple):
    """A region of the source image in pixels, and whether the crop is mirrored."""

    left: int
    top: int
    width: int
    height: int
    flip: bool


@dataclass(frozen=True)
class RandomResizedCrop:
    """Inception-style crop: a random area and aspect ratio, resized to ``size`` (torchvision's recipe).

    ``scale`` bounds the crop's area as a fraction of the image, ``ratio`` its width / height.
    """

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True

    def box(self, key: SampleKey, width: int, height: int) -> CropBox:
        """The crop of a ``width`` x ``height`` image for ``key``; the same key always gives the same box."""
        rng = random.Random(f"crop:{key.seed}:{key.step}:{key.index}")  # SHA-512-seeded, as the children are
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        flip = self.flip and rng.random() < 0.5
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            crop_w = round(math.sqrt(target_area * aspect))
            crop_h = round(math.sqrt(target_area / aspect))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
                return CropBox(left, top, crop_w, crop_h, flip)
        # Ten misses (a very long or tall image): the largest central crop within the ratio bounds.
        crop_w, crop_h = width, height
        if width / height < self.ratio[0]:
            crop_h = round(width / self.ratio[0])
        elif width / height > self.ratio[1]:
            crop_w = round(height * self.ratio[1])
        return CropBox((width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h, flip)

    def __call__(self, image: Image.Image, key: SampleKey) -> torch.Tensor:
        box = self.box(key, *image.size)
        region = (box.left, box.top, box.left + box.width, box.top + box.height)
        # Crop first, as torchvision does: resizing with a box would blend in pixels outside it at the edges.
        out = image.crop(region).resize((self.size, self.size), Image.Resampling.BILINEAR)
        if box.flip:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return TF.pil_to_tensor(out)


@dataclass(frozen=True)
class CentreCrop:
    """Evaluation view: the shorter side resized to ``size / crop_fraction``, then the central ``size``².

    ``crop_fraction`` 0.875 is the ImageNet convention (256 -> 224); 1.0 keeps the whole shorter side.
    """

    size: int
    crop_fraction: float = 0.875

    def __call__(self, image: Image.Image) -> torch.Tensor:
        width, height = image.size
        short = round(self.size / self.crop_fraction)
        scale = short / min(width, height)
        new_w, new_h = max(self.size, round(width * scale)), max(self.size, round(height * scale))
        left, top = (new_w - self.size) // 2, (new_h - self.size) // 2
        # One resampling pass: PIL resizes only the source region that lands in the crop.
        region = (left / new_w * width, top / new_h * height,
                  (left + self.size) / new_w * width, (top + self.size) / new_h * height)
        return TF.pil_to_tensor(image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=region))


