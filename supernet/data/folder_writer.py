"""Write uint8 image tensors as an ImageNet-style folder (``train/<class>/*.png``, ``val/<class>/*.png``).

It turns a dataset that is on disk already (Fashion-MNIST) into real image files, so the image-folder
path can be tested and benchmarked end to end without a download.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from PIL import Image

from supernet.data.errors import DatasetError
from supernet.data.memory import TensorImageDataset

FORMATS = {"png": "PNG", "jpeg": "JPEG"}


def class_folder_names(classes: list[str]) -> list[str]:
    """Folder names that sort in class order (so the folder's labels are the dataset's) and are safe
    as paths: ``T-shirt/top`` -> ``0_t-shirt_top``."""
    width = len(str(len(classes) - 1))
    return [f"{i:0{width}d}_{re.sub(r'[^a-z0-9-]+', '_', name.lower()).strip('_')}"
            for i, name in enumerate(classes)]


def write_image_folder(out: Path, splits: Mapping[str, TensorImageDataset], classes: list[str],
                       image_format: str = "png", quality: int = 95,
                       manifest: Mapping[str, object] | None = None) -> dict[str, int]:
    """Write each split as ``out/<split>/<class>/<index>.<ext>``; returns the image count per split.

    The folder is built beside ``out`` and renamed into place at the end, so an interrupted write
    never leaves a half-filled folder that looks complete. ``manifest`` is saved as manifest.json.
    """
    if image_format not in FORMATS:
        raise DatasetError(f"image format must be one of {', '.join(FORMATS)}, got {image_format!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty; remove it or choose another folder")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    folders = class_folder_names(classes)
    counts = {}
    for split, dataset in splits.items():
        for folder in folders:
            (staging / split / folder).mkdir(parents=True, exist_ok=True)
        for index in range(len(dataset)):
            image, label = dataset[index]
            path = staging / split / folders[label] / f"{index:05d}.{image_format.replace('jpeg', 'jpg')}"
            _to_pil(image).save(path, FORMATS[image_format], **({"quality": quality} if image_format == "jpeg"
                                                                 else {}))
        counts[split] = len(dataset)
    (staging / "manifest.json").write_text(json.dumps({"counts": counts, "classes": classes,
                                                       "format": image_format, **(manifest or {})},
                                                      indent=2) + "\n")
    if out.exists():
        out.rmdir()  # empty, checked above
    staging.rename(out)
    return counts


def _to_pil(image: torch.Tensor) -> Image.Image:
    # A (H, W) uint8 array becomes a greyscale image, (H, W, 3) an RGB one.
    pixels = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0).contiguous()
    return Image.fromarray(pixels.numpy())
