"""Training crops decoded on the device: the loader's workers only read JPEG bytes and draw crop boxes.

With ``data.decode=cuda`` a worker opens each file's header (for its size), draws the crop box from
the sample's key exactly as ``RandomResizedCrop`` does, and hands over the undecoded bytes. The
batch becomes pixels in ``EncodedBatch.to(device)``, so the training loop's usual
``images.to(device, non_blocking=True)`` is where nvJPEG (``torchvision.io.decode_jpeg``) runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_jpeg

from supernet.data.crops import CropBox, RandomResizedCrop, SampleKey
from supernet.data.errors import DatasetError, ImageFileError


@dataclass(frozen=True)
class EncodedSample:
    data: torch.Tensor  # the file's bytes, uint8 1-D
    box: CropBox
    size: int
    path: str


def encoded_sample(path: str, crop: RandomResizedCrop, key: SampleKey) -> EncodedSample:
    """The bytes of a JPEG and its training crop box for ``key``; nothing is decoded here."""
    try:
        with Image.open(path) as image:  # reads the header only
            kind, (width, height) = image.format, image.size
        data = torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageFileError(f"{path}: cannot read image ({exc})") from exc
    if kind != "JPEG":
        raise ImageFileError(f"{path}: data.decode=cuda decodes JPEG files only and this is {kind}; "
                           "set data.decode=pil")
    return EncodedSample(data, crop.box(key, width, height), crop.size, path)


class EncodedBatch:
    """A batch of encoded JPEGs; ``to(device)`` decodes, crops, resizes and flips them there."""

    def __init__(self, samples: list[EncodedSample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def pin_memory(self) -> EncodedBatch:
        return self  # nvJPEG reads the bytes from host memory itself

    def to(self, device: torch.device | str, non_blocking: bool = False) -> torch.Tensor:
        """uint8 ``(N, 3, size, size)`` on ``device``; antialiased bilinear resize like PIL's."""
        device = torch.device(device)
        try:
            with warnings.catch_warnings():
                # torchvision >= 0.29 points to TorchCodec for decoding; its nvJPEG path still works.
                warnings.simplefilter("ignore", DeprecationWarning)
                images = decode_jpeg([s.data for s in self.samples], mode=ImageReadMode.RGB, device=device)
        except RuntimeError as exc:
            raise DatasetError(f"decoding a batch of {len(self)} JPEGs on {device} failed ({exc}); the "
                               f"first file is {self.samples[0].path}") from exc
        out = []
        for image, sample in zip(images, self.samples, strict=True):
            box = sample.box
            region = image[None, :, box.top:box.top + box.height, box.left:box.left + box.width]
            resized = F.interpolate(region.float(), size=(sample.size, sample.size), mode="bilinear",
                                    antialias=True, align_corners=False)
            out.append(resized.flip(-1) if box.flip else resized)
        return torch.cat(out).round_().clamp_(0, 255).to(torch.uint8)


def collate_encoded(batch: list[tuple[EncodedSample, int]]) -> tuple[EncodedBatch, torch.Tensor]:
    return EncodedBatch([sample for sample, _ in batch]), torch.tensor([label for _, label in batch])
