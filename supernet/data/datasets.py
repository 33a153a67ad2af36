"""``load_dataset``: one entry point that turns a dataset name and config into train/val/test splits.

Every source yields its own train and test split; the validation split is always carved out
of train (seeded, disjoint) and the test split is never touched, so model selection can't
leak test data. Sources return uint8 CHW images and the training loop normalises on the
device with ``mean``/``std`` from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from supernet.data.errors import DatasetError
from supernet.data.idx import read_idx
from supernet.data.imagefolder import (
    FolderOptions,
    ImageFolderDataset,
    readable,
    scan_split,
    training_classes,
)
from supernet.data.memory import TensorImageDataset
from supernet.data.splits import hold_out, seeded_subset
from supernet.data.synthetic import make_synthetic, parse_synthetic_spec

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
# Where download=true puts data when no root is given: the system dataset dir isn't writable.
DOWNLOAD_ROOT = Path.home() / ".cache" / "supernet" / "datasets"
IMAGEFOLDER_DEFAULT_SIZE = 224

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
# Channel statistics of the full standard training sets. Fixed constants rather than values
# recomputed per run, so normalisation (and exported models) do not depend on val_size/subset.
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class SplittableDataset(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...
    def select(self, indices: torch.Tensor) -> SplittableDataset: ...


@dataclass
class DataSplits:
    """The three splits plus what models and normalisation need to know about the data.

    ``train_indices``/``val_indices`` index the dataset's own training split (before hold-out)
    and ``test_indices`` its own test split, so disjointness and determinism are checkable.
    """

    train: Dataset[tuple[torch.Tensor, int]]
    val: Dataset[tuple[torch.Tensor, int]]
    test: Dataset[tuple[torch.Tensor, int]]
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    classes: list[str]
    train_indices: torch.Tensor
    val_indices: torch.Tensor
    test_indices: torch.Tensor
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (data.bad_images=skip)


@dataclass(frozen=True)
class _Request:
    root: Path | None
    download: bool
    image_size: int | None
    synthetic: Mapping[str, Any] | None
    seed: int
    folder: FolderOptions


@dataclass(frozen=True)
class _Source:
    """A dataset as it comes: its own full train and test splits and their metadata."""

    train: SplittableDataset
    test: SplittableDataset
    classes: list[str]
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    skipped: tuple[str, ...] = ()


def load_dataset(
    name: str,
    root: str | None,
    val_size: int | float,
    seed: int,
    subset: int | None = None,
    download: bool = False,
    synthetic: dict[str, Any] | None = None,
    image_size: int | None = None,
    val_subset: int | None = None,
    test_subset: int | None = None,
    folder: FolderOptions | None = None,
) -> DataSplits:
    """Load ``name`` and split it into train / held-out val / test.

    ``val_size`` is a count or a fraction of the training split, held out with a permutation
    seeded by ``seed``. ``subset``, ``val_subset`` and ``test_subset`` cap each split to the
    first-k of a seeded permutation, for quick runs. ``image_size`` is the output size for
    ``imagefolder`` (default 224) and ``synthetic``; in-memory datasets keep their native size.
    ``folder`` says how ``imagefolder`` files are cropped and what happens to unreadable ones.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in _SOURCES:
        raise DatasetError(f"unknown dataset {name!r}; valid names are: {', '.join(sorted(_SOURCES))}")
    request = _Request(
        root=Path(root).expanduser() if root is not None else None,
        download=download,
        image_size=image_size,
        synthetic=synthetic,
        seed=seed,
        folder=folder or FolderOptions(),
    )
    source = _SOURCES[key](request)
    if len(source.train) == 0:
        raise DatasetError(f"{key}: the training split is empty")

    holdout = hold_out(len(source.train), val_size, seed, subset=subset, val_subset=val_subset)
    test_indices = seeded_subset(len(source.test), test_subset, seed, "data.test_subset")
    return DataSplits(
        train=source.train.select(holdout.train),
        val=source.train.select(holdout.val),
        test=source.test.select(test_indices),
        num_classes=len(source.classes),
        in_channels=source.in_channels,
        image_size=source.image_size,
        mean=source.mean,
        std=source.std,
        name=key,
        classes=source.classes,
        train_indices=holdout.train,
        val_indices=holdout.val,
        test_indices=test_indices,
        skipped=list(source.skipped),
    )


def dataset_names() -> list[str]:
    return sorted(_SOURCES)


def _load_fashion_mnist(request: _Request) -> _Source:
    _require_native_size("fashion_mnist", request.image_size, 28)
    search_roots = [request.root] if request.root is not None else [FASHION_MNIST_ROOT, DOWNLOAD_ROOT]
    files = _find_fashion_mnist_files(search_roots)
    if files is None and request.download:
        download_root = request.root if request.root is not None else DOWNLOAD_ROOT
        _download_fashion_mnist(download_root)
        files = _find_fashion_mnist_files([download_root])
    if files is None:
        looked_in = ", ".join(str(d) for root in search_roots for d in _fashion_mnist_dirs(root))
        raise DatasetError(
            f"fashion_mnist: IDX files ({', '.join(name + '[.gz]' for name in _FASHION_MNIST_FILES)}) "
            f"not found; looked in {looked_in}. To get the data: apt-get install dataset-fashion-mnist, "
            "or set data.root=DIR to a directory holding the IDX files, "
            "or data.download=true to fetch with torchvision"
        )
    train = _read_idx_pair(files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"])
    test = _read_idx_pair(files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"])
    return _Source(
        train=train,
        test=test,
        classes=list(FASHION_MNIST_CLASSES),
        in_channels=1,
        image_size=28,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
    )


_FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _fashion_mnist_dirs(root: Path) -> list[Path]:
    # The Debian package puts the files directly in root; torchvision puts them in FashionMNIST/raw.
    return [root, root / "FashionMNIST" / "raw"]


def _find_fashion_mnist_files(roots: list[Path]) -> dict[str, Path] | None:
    for root in roots:
        for directory in _fashion_mnist_dirs(root):
            found = {}
            for stem in _FASHION_MNIST_FILES:
                # Prefer the uncompressed copy torchvision leaves next to the .gz: no decompression.
                candidates = [directory / stem, directory / f"{stem}.gz"]
                existing = [path for path in candidates if path.is_file()]
                if existing:
                    found[stem] = existing[0]
            if len(found) == len(_FASHION_MNIST_FILES):
                return found
    return None


def _download_fashion_mnist(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same to the user
        raise DatasetError(f"fashion_mnist: download into {root} failed ({exc})") from exc


def _read_idx_pair(images_path: Path, labels_path: Path) -> TensorImageDataset:
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if len(images) != len(labels):
        raise DatasetError(
            f"{labels_path}: {len(labels)} labels but {images_path.name} has {len(images)} images"
        )
    return TensorImageDataset(images.unsqueeze(1), labels.to(torch.int64))


def _load_cifar10(request: _Request) -> _Source:
    _require_native_size("cifar10", request.image_size, 32)
    root = request.root if request.root is not None else DOWNLOAD_ROOT
    train, classes = _read_cifar10_split(root, train=True, download=request.download)
    test, _ = _read_cifar10_split(root, train=False, download=request.download)
    return _Source(
        train=train,
        test=test,
        classes=classes,
        in_channels=3,
        image_size=32,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
    )


def _read_cifar10_split(root: Path, train: bool, download: bool) -> tuple[TensorImageDataset, list[str]]:
    from torchvision.datasets import CIFAR10

    try:
        cifar = CIFAR10(str(root), train=train, download=download)
    except RuntimeError as exc:
        raise DatasetError(
            f"cifar10: no valid CIFAR-10 data at {root / 'cifar-10-batches-py'} ({exc}). "
            "Set data.root=DIR to a directory containing cifar-10-batches-py/, "
            "or data.download=true to fetch it with torchvision (~170 MB)"
        ) from exc
    except OSError as exc:  # includes network failures during download
        raise DatasetError(f"cifar10: could not read or download data under {root} ({exc})") from exc
    # torchvision keeps HWC numpy; convert once to the CHW layout everything else uses.
    images = torch.from_numpy(cifar.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(cifar.targets, dtype=torch.int64)
    return TensorImageDataset(images, labels), list(cifar.classes)


def _load_imagefolder(request: _Request) -> _Source:
    layout = "ImageNet-style train/ and val/ folders, each with one subfolder per class"
    if request.root is None:
        raise DatasetError(f"imagefolder: set data.root=DIR to a directory with {layout}")
    train_dir, test_dir = request.root / "train", request.root / "val"
    for directory in (train_dir, test_dir):
        if not directory.is_dir():
            raise DatasetError(f"imagefolder: {directory} is not a directory; data.root must hold {layout}")
    classes, class_to_idx = training_classes(train_dir)
    image_size = request.image_size if request.image_size is not None else IMAGEFOLDER_DEFAULT_SIZE
    train_samples, test_samples = scan_split(train_dir, class_to_idx), scan_split(test_dir, class_to_idx)
    skipped: list[str] = []
    if request.folder.bad_images == "skip":
        (train_samples, bad_train), (test_samples, bad_test) = readable(train_samples), readable(test_samples)
        skipped = bad_train + bad_test
    if not train_samples:
        raise DatasetError(f"imagefolder: no images found under {train_dir}")
    return _Source(
        train=ImageFolderDataset(train_samples, image_size, request.folder),
        test=ImageFolderDataset(test_samples, image_size, request.folder),
        classes=classes,
        in_channels=3,
        image_size=image_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        skipped=tuple(skipped),
    )


def _load_synthetic(request: _Request) -> _Source:
    spec = parse_synthetic_spec(request.synthetic, request.image_size)
    train, test = make_synthetic(spec, request.seed)
    mean, std = train.channel_stats()
    return _Source(
        train=train,
        test=test,
        classes=[f"class_{index}" for index in range(spec.num_classes)],
        in_channels=spec.channels,
        image_size=spec.image_size,
        mean=mean,
        std=std,
    )


def _require_native_size(name: str, image_size: int | None, native: int) -> None:
    if image_size is not None and image_size != native:
        raise DatasetError(
            f"{name}: images are {native}x{native} and are not resized; "
            f"data.image_size={image_size} is not supported (leave it unset or set {native})"
        )


_SOURCES: dict[str, Callable[[_Request], _Source]] = {
    "fashion_mnist": _load_fashion_mnist,
    "cifar10": _load_cifar10,
    "imagefolder": _load_imagefolder,
    "synthetic": _load_synthetic,
}
