"""The ``data:`` settings of a run turned into the data layer's objects: which crop, where, how decoded.

Every stage that rebuilds a run's data (training, search, export) reads the settings through here, so
an image folder is listed and cropped alike everywhere. Settings a run's config lacks take the data
layer's defaults, which keeps older run directories readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from supernet.data.augment import BatchAugment
from supernet.data.crops import RandomResizedCrop
from supernet.data.datasets import DataSplits
from supernet.data.errors import DatasetError
from supernet.data.imagefolder import DECODERS, FolderOptions

CROPS = ("auto", "pad", "random_resized")


def training_crop(data: Mapping[str, Any]) -> str:
    """``pad`` (on the device) or ``random_resized`` (in the loader workers), from ``data.augment.crop``."""
    augment = data.get("augment") or {}
    crop = augment.get("crop", "auto")
    if crop not in CROPS:
        raise DatasetError(f"data.augment.crop must be one of {', '.join(CROPS)}, got {crop!r}")
    folder = data.get("name") == "imagefolder"
    if crop == "auto":
        return "random_resized" if folder else "pad"
    if crop == "random_resized" and not folder:
        raise DatasetError(f"data.augment.crop=random_resized needs data.name=imagefolder (got "
                           f"{data.get('name')!r}); in-memory images are cropped on the device: use pad")
    return crop


def folder_options(data: Mapping[str, Any], image_size: int | None,
                   training_device: str | None = None) -> FolderOptions:
    """How ``data.name=imagefolder`` files are read; with ``training_device`` (the device type training
    runs on) also the training crop and where it is decoded."""
    defaults = FolderOptions()
    options = {"eval_crop": float(data.get("eval_crop", defaults.eval_crop)),
               "bad_images": data.get("bad_images", defaults.bad_images)}
    decode = data.get("decode", defaults.decode)
    if training_device is None:
        return FolderOptions(**options)
    if decode not in DECODERS:
        raise DatasetError(f"data.decode must be one of {', '.join(DECODERS)}, got {decode!r}")
    if decode == "cuda" and training_device != "cuda":
        raise DatasetError(f"data.decode=cuda needs training on a CUDA device (this run trains on "
                           f"{training_device}); set data.decode=pil")
    if data.get("name") == "imagefolder" and training_crop(data) == "random_resized":
        augment = data.get("augment") or {}
        options["train_crop"] = RandomResizedCrop(
            size=image_size, scale=_range(augment, "scale", 1.0), ratio=_range(augment, "ratio", None),
            flip=bool(augment.get("flip", True)))
        options["decode"] = decode
    elif decode != defaults.decode:
        raise DatasetError(f"data.decode={decode} decodes training crops of an image folder; it "
                           "needs data.name=imagefolder and data.augment.crop=random_resized")
    return FolderOptions(**options)


def batch_augment(data: Mapping[str, Any], splits: DataSplits) -> BatchAugment:
    """The device-side part of training augmentation: pad-crop and flip, or normalisation alone when the
    workers already cropped and flipped."""
    augment = data.get("augment") or {}
    if training_crop(data) == "random_resized":
        return BatchAugment(splits.mean, splits.std, padding=0, flip=False)
    return BatchAugment(splits.mean, splits.std, padding=augment.get("pad", 0),
                        flip=augment.get("flip", True))


def _range(augment: Mapping[str, Any], key: str, upper: float | None) -> tuple[float, float]:
    default = getattr(RandomResizedCrop, key)
    value: Sequence[float] = augment.get(key, default)
    low, high = (float(v) for v in value) if len(value) == 2 else (0.0, -1.0)
    if not 0.0 < low <= high or (upper is not None and high > upper):
        bound = f"0 < low <= high <= {upper:g}" if upper is not None else "0 < low <= high"
        raise DatasetError(f"data.augment.{key} must be [low, high] with {bound}, got {list(value)}")
    return low, high


def decode_size(data: Mapping[str, Any], resolutions: Sequence[int]) -> int | None:
    """The size an image folder is decoded at: ``data.image_size``, else the space's largest resolution
    (children at lower resolutions are resized from the batch)."""
    size = data.get("image_size")
    if size is None and data.get("name") == "imagefolder":
        return max(resolutions)
    return size
