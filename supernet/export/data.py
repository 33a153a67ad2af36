"""The export's view of the data layer: the run's splits, the calibration set, normalised batches.

Everything the export and `supernet eval` need from `supernet.data` passes through here, and the data
settings are copied into card.json so `supernet eval` can rebuild exactly the same splits later.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from supernet.config import default_of
from supernet.data import DatasetError, DataSplits, load_dataset, make_loader, normalize
from supernet.data.settings import folder_options
from supernet.export.errors import ExportError
from supernet.run.bn_recalibration import CalibrationSet, resize_batch

# The settings of `load_dataset` a card records; with them the same splits can be rebuilt anywhere.
DATA_KEYS = ("name", "root", "val_size", "subset", "val_subset", "test_subset", "image_size", "synthetic",
             "eval_crop", "bad_images")
DEFAULT_EVAL_BATCH = default_of("train", "val.batch_size")  # as training validates


def data_settings(cfg: DictConfig) -> dict[str, Any]:
    """The run config's data options (plus its seed), as plain JSON-able values."""
    node = OmegaConf.to_container(cfg.data, resolve=True)
    settings = {key: node.get(key) for key in DATA_KEYS}
    settings["seed"] = int(cfg.seed)
    return settings


def load_splits(settings: Mapping[str, Any]) -> DataSplits:
    """The train / val / test splits described by `settings`; never downloads."""
    try:
        return load_dataset(settings["name"], settings.get("root"), settings["val_size"],
                            int(settings["seed"]), subset=settings.get("subset"), download=False,
                            synthetic=settings.get("synthetic"), image_size=settings.get("image_size"),
                            val_subset=settings.get("val_subset"), test_subset=settings.get("test_subset"),
                            folder=folder_options(
                                {key: value for key, value in settings.items() if value is not None},
                                settings.get("image_size")))
    except DatasetError as err:  # the data layer's errors are not SupernetErrors; make them one-liners
        raise ExportError(f"data: {err}") from err
    except KeyError as err:
        raise ExportError(f"data settings lack {err}; expected the keys {', '.join(DATA_KEYS)} and seed"
                          ) from err


def split(splits: DataSplits, name: str):
    if name not in ("train", "val", "test"):
        raise ExportError(f"split {name!r} is not one of train, val, test")
    return getattr(splits, name)


def labelled_batches(dataset, mean, std, resolution: int, batch_size: int = DEFAULT_EVAL_BATCH,
                     limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """`(images, labels)` in dataset order: float32, normalised, resized to `resolution` (CPU)."""
    seen = 0
    for images, labels in make_loader(dataset, batch_size, shuffle=False, seed=0, epoch=0):
        if limit is not None:
            images, labels = images[: limit - seen], labels[: limit - seen]
        yield resize_batch(normalize(images, mean, std), resolution), torch.as_tensor(labels)
        seen += len(labels)
        if limit is not None and seen >= limit:
            return


def validation_images(splits: DataSplits, resolution: int, sizes: tuple[int, ...]) -> list[Tensor]:
    """The first validation images, cut into batches of `sizes` (real inputs for the self-check)."""
    needed = sum(sizes)
    images = torch.cat([x for x, _ in labelled_batches(splits.val, splits.mean, splits.std, resolution,
                                                       batch_size=needed, limit=needed)])
    if len(images) == 0:
        raise ExportError("the validation split is empty; set data.val_size > 0 in the run config")
    bounds = torch.tensor((0, *sizes)).cumsum(0).clamp(max=len(images)).tolist()
    return [images[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def calibration_set(splits: DataSplits, num_images: int, batch_size: int, seed: int,
                    device: torch.device | str = "cpu") -> CalibrationSet:
    """The fixed, seeded draw of training images (no augmentation) BN is recalibrated with."""
    from supernet.run.child_eval import calibration_batches

    return calibration_batches(splits.train, num_images, batch_size, seed, splits.mean, splits.std,
                               torch.device(device), torch.contiguous_format)
