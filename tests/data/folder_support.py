"""A small image folder written into a test's tmp_path with the project's own writer."""

from __future__ import annotations

from pathlib import Path

import torch

from supernet.data import TensorImageDataset
from supernet.data.folder_writer import write_image_folder

CLASSES = ["cat", "dog", "eel"]


def tiny_folder(root: Path, train: int = 48, test: int = 12, size: tuple[int, int] = (36, 30),
                image_format: str = "png") -> Path:
    """RGB noise images of ``size`` (height, width) with cycling labels: ``root/train`` and ``root/val``."""
    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> TensorImageDataset:
        images = torch.randint(0, 256, (count, 3, *size), dtype=torch.uint8, generator=generator)
        return TensorImageDataset(images, torch.arange(count) % len(CLASSES))

    write_image_folder(root, {"train": split(train), "val": split(test)}, CLASSES, image_format)
    return root
