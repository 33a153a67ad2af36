"""Evaluating a child of a run: the run's data splits, its fixed BN-recalibration draw, and top-1 accuracy
of the BN-recalibrated child on the device with one sync."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from supernet.data import DataSplits, derive_seed, load_dataset, normalize
from supernet.data.settings import decode_size, folder_options
from supernet.models import Supernet
from supernet.run.bn_recalibration import CalibrationSet, recalibrate_bn, resize_batch
from supernet.run.device import Precision
from supernet.space import Arch


@torch.no_grad()
def count_top1(predict: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]]
               ) -> tuple[int, int]:
    """(top-1 hits, images) of any predictor over labelled batches: an eager child or a loaded export.
    Hits are summed where the logits are and read once, so a GPU step is not stalled per batch."""
    correct: Tensor | int = 0
    total = 0
    for images, labels in batches:
        logits = predict(images)
        correct = correct + (logits.argmax(dim=1) == labels.to(logits.device)).sum()
        total += labels.shape[0]
    return int(correct), total


@torch.no_grad()
def count_correct(model: Supernet, arch: Arch, calib_batches: Iterable[Tensor],
                  batches: Iterable[tuple[Tensor, Tensor]], precision: Precision) -> tuple[int, int]:
    """(top-1 hits, images) of `arch` on prepared batches, after recalibrating its BN on `calib_batches`;
    both are normalised, at the child's resolution and on the model's device."""
    model.set_active(arch)
    with precision.autocast():
        recalibrate_bn(model, calib_batches)
        return count_top1(model, batches)


def prepare_batch(x: Tensor, resolution: int, memory_format: torch.memory_format) -> Tensor:
    """A normalised batch resized for a child of `resolution`, in the model's memory format."""
    return resize_batch(x, resolution).contiguous(memory_format=memory_format)


def child_accuracy(model: Supernet, arch: Arch, calib: CalibrationSet,
                   batches: Iterable[tuple[Tensor, Tensor]], mean, std, device: torch.device,
                   memory_format: torch.memory_format, precision: Precision) -> float:
    """Top-1 accuracy (0..1) of `arch` on uint8 `batches` after recalibrating its BN on `calib`."""
    resolution = arch.resolution
    prepared = ((prepare_batch(normalize(images.to(device, non_blocking=True), mean, std), resolution,
                               memory_format), labels.to(device, non_blocking=True))
                for images, labels in batches)
    calib_batches = (resize_batch(b, resolution) for b in calib.batches)
    correct, total = count_correct(model, arch, calib_batches, prepared, precision)
    return correct / max(1, total)


def calibration_seed(run_seed: int) -> int:
    """The seed of a run's BN-calibration draw. Training, search and export all use it, so a child is
    recalibrated on the same training images wherever it is evaluated."""
    return derive_seed(run_seed, 7)


def calibration_batches(dataset, num_images: int, batch_size: int, seed: int, mean, std,
                        device: torch.device, memory_format: torch.memory_format) -> CalibrationSet:
    """A fixed, seeded draw of training images (no augmentation), normalised and kept on the device."""
    generator = torch.Generator().manual_seed(seed)
    count = min(num_images, len(dataset))
    order = torch.randperm(len(dataset), generator=generator)[:count]
    images = torch.stack([dataset[int(i)][0] for i in order])
    batches = [normalize(chunk, mean, std) for chunk in images.split(batch_size)]
    return CalibrationSet.from_batches(batches).to(device, memory_format)


def load_run_data(cfg: DictConfig, training_device: str | None = None) -> DataSplits:
    """The train / validation / test splits a run's config names, exactly as training drew them;
    `training_device` (the device type a training run uses) adds an image folder's training crops."""
    from supernet.config import space_from_config

    d = cfg.data
    image_size = decode_size(d, space_from_config(cfg).spec.resolutions)
    return load_dataset(d.name, d.root, d.val_size, cfg.seed, subset=d.subset, download=d.download,
                        synthetic=OmegaConf.to_container(d.synthetic), image_size=image_size,
                        val_subset=d.val_subset, test_subset=d.test_subset,
                        folder=folder_options(d, image_size, training_device))
