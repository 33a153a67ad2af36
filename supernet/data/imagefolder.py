"""ImageNet-style folders (``class_name/image.ext``) decoded lazily, in the loader's workers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from tqdm import tqdm

from supernet.data.crops import CentreCrop, RandomResizedCrop, SampleKey
from supernet.data.errors import DatasetError, ImageFileError

BAD_IMAGE_POLICIES = ("error", "skip")
DECODERS = ("pil", "cuda")


@dataclass(frozen=True)
class FolderOptions:
    """How an image folder is read: the evaluation crop, unreadable files, and the training crop."""

    eval_crop: float = 0.875
    bad_images: str = "error"  # error: stop naming the file; skip: drop unreadable files when listing
    train_crop: RandomResizedCrop | None = None  # None: training images get the evaluation view too
    decode: str = "pil"  # pil: in the loader workers; cuda: JPEG bytes decoded on the device

    def __post_init__(self) -> None:
        if not 0.0 < self.eval_crop <= 1.0:
            raise DatasetError(f"data.eval_crop must be in (0, 1], got {self.eval_crop}")
        if self.bad_images not in BAD_IMAGE_POLICIES:
            raise DatasetError(f"data.bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, "
                               f"got {self.bad_images!r}")
        if self.decode not in DECODERS:
            raise DatasetError(f"data.decode must be one of {', '.join(DECODERS)}, got {self.decode!r}")
        if self.decode == "cuda" and self.train_crop is None:
            raise DatasetError("data.decode=cuda decodes training crops on the device; it needs "
                               "data.augment.crop=random_resized")


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """``(path, label)`` samples, decoded when read.

    An ``int`` index gives the evaluation view (``CentreCrop``); a ``SampleKey`` gives the training
    view (``RandomResizedCrop`` drawn from the key), so one dataset serves training, BN calibration
    and validation. Decoding is lazy because a real ImageFolder does not fit in memory; the
    DataLoader's workers do it in parallel.
    """

    def __init__(self, samples: list[tuple[str, int]], image_size: int, options: FolderOptions) -> None:
        if image_size < 1:
            raise DatasetError(f"data.image_size must be positive, got {image_size}")
        self.samples = samples
        self.image_size = image_size
        self.options = options
        self.eval_view = CentreCrop(image_size, options.eval_crop)

    @property
    def keyed_by_step(self) -> bool:
        """True when training samples must be asked for by ``SampleKey`` (their crop is drawn per step)."""
        return self.options.train_crop is not None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | SampleKey):
        if isinstance(key, SampleKey):
            return self.training_sample(key)
        path, label = self.samples[key]
        return self.eval_view(open_rgb(path)), label

    def training_sample(self, key: SampleKey):
        crop = self.options.train_crop
        if crop is None:
            raise DatasetError("this image folder was loaded without a training crop; use integer indices")
        path, label = self.samples[key.index]
        if self.options.decode == "cuda":
            from supernet.data.gpu_decode import encoded_sample

            return encoded_sample(path, crop, key), label
        return crop(open_rgb(path), key), label

    @property
    def collate_fn(self):
        """How the loader joins training samples: encoded ones stay a list until the device decodes them."""
        if self.options.decode == "cuda" and self.keyed_by_step:
            from supernet.data.gpu_decode import collate_encoded

            return collate_encoded
        return None

    def select(self, indices: torch.Tensor) -> ImageFolderDataset:
        return ImageFolderDataset([self.samples[i] for i in indices.tolist()], self.image_size, self.options)


def open_rgb(path: str) -> Image.Image:
    """The image at ``path`` decoded to RGB, or a ``DatasetError`` naming the file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageFileError(f"{path}: cannot decode image ({exc}); delete or replace the file, or set "
                           "data.bad_images=skip to leave unreadable files out") from exc


def readable(samples: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[str]]:
    """``samples`` split into the files that decode and the paths of those that do not.

    JPEGs are decoded at reduced scale (``draft``), which reads every byte of the file at a fraction
    of a full decode's cost, so a truncated or garbled file is still caught.
    """
    kept, bad = [], []
    # A bar on a terminal only: a large folder takes minutes.
    for path, label in tqdm(samples, desc="checking images", unit="img", disable=None, leave=False):
        try:
            with Image.open(path) as image:
                image.draft("RGB", (64, 64))
                image.load()
        except (OSError, UnidentifiedImageError, ValueError):
            bad.append(path)
            continue
        kept.append((path, label))
    return kept, bad


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
