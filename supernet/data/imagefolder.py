"""ImageNet-style folders (``class_name/image.ext``) decoded lazily to fixed-size uint8 tensors."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from supernet.data.errors import DatasetError


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """``(path, label)`` samples decoded on access, resized and centre-cropped to ``image_size``.

    Decoding is lazy because a real ImageFolder does not fit in memory; workers of the
    DataLoader do it in parallel. The shorter side is resized to ``image_size`` before the
    centre crop so no image is distorted and as little as possible is cut away.
    """

    def __init__(self, samples: list[tuple[str, int]], image_size: int) -> None:
        if image_size < 1:
            raise DatasetError(f"data.image_size must be positive, got {image_size}")
        self.samples = samples
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"{path}: cannot decode image ({exc})") from exc
        resized = TF.resize(rgb, self.image_size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        cropped = TF.center_crop(resized, [self.image_size, self.image_size])
        return TF.pil_to_tensor(cropped), label

    def select(self, indices: torch.Tensor) -> ImageFolderDataset:
        return ImageFolderDataset([self.samples[i] for i in indices.tolist()], self.image_size)


def scan_split(directory: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """List the images under ``directory/<class>/`` using the *training* class numbering.

    Using the training mapping for the test folder too matters: if the test folder lacked a
    class, numbering its own classes would silently shift every later label by one.
    """
    unknown = sorted(set(_class_dirs(directory)) - set(class_to_idx))
    if unknown:
        raise DatasetError(f"{directory}: class folders {unknown} do not exist in the training folder")
    try:
        return make_dataset(str(directory), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except OSError as exc:
        raise DatasetError(f"{directory}: cannot list images ({exc})") from exc


def training_classes(directory: Path) -> tuple[list[str], dict[str, int]]:
    try:
        classes, class_to_idx = find_classes(str(directory))
    except FileNotFoundError as exc:
        raise DatasetError(f"{directory}: no class subfolders found ({exc})") from exc
    return classes, class_to_idx


def _class_dirs(directory: Path) -> list[str]:
    return [entry.name for entry in os.scandir(directory) if entry.is_dir()]
