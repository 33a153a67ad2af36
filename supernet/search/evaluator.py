"""Validation accuracy of BN-recalibrated children of one trained supernet, cached by arch.

The same measure as `supernet.run.child_eval.child_accuracy` (and the same calibration images: a prefix
of the seeded draw the training loop uses), arranged for evaluating thousands of children:

- the calibration batches and the validation images are normalised once and kept on the device, and
  their bilinear resizes are kept per resolution (within `cache_mb`), where `child_accuracy` would
  normalise, resize and copy every batch again for every child;
- the supernet is never copied: `set_active` + `recalibrate_bn` overwrite its BN statistics in place
  (they describe only the active child anyway);
- one host sync per child (the correct count), and results are memoised by arch.

The validation images are the run's held-out validation split (carved from the training set, disjoint
from both the images trained on and the test set); the test set is never read here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from supernet.data import make_loader, normalize
from supernet.models import Supernet
from supernet.run.bn_recalibration import CalibrationSet, recalibrate_bn, resize_batch
from supernet.run.child_eval import calibration_batches, calibration_seed, load_run_data
from supernet.run.device import Precision, resolve_device, resolve_precision
from supernet.run.directory import checkpoint_path, load_supernet
from supernet.search.errors import SearchError
from supernet.search.settings import EvaluationSettings
from supernet.space import Arch


class AccuracyEvaluator:
    """`evaluator(arch)`: top-1 accuracy (0..1) on the validation images; `calls` counts real evaluations."""

    def __init__(self, model: Supernet, calib: CalibrationSet, val_images: Tensor, val_labels: Tensor,
                 mean, std, *, precision: Precision,
                 memory_format: torch.memory_format = torch.contiguous_format, batch_size: int = 500,
                 cache_mb: float = 2048.0, key: dict[str, Any] | None = None) -> None:
        if len(val_images) == 0:
            raise ValueError("no validation images to evaluate children on")
        self.model = model.eval()
        self.device = calib.batches[0].device
        self.calib = calib
        self.val_images = val_images.to(self.device)  # uint8 NCHW: 4x smaller than normalised floats
        self.val_labels = val_labels.to(self.device)
        self.mean, self.std = mean, std
        self.precision, self.memory_format, self.batch_size = precision, memory_format, batch_size
        self._cache_budget = int(cache_mb * 2**20)
        self._inputs: dict[int, tuple[tuple[Tensor, ...], tuple[Tensor, ...]]] = {}
        self._memo: dict[Arch, float] = {}
        self.calls = 0
        self.key = {**(key or {}), "calibration": calib.digest, "calib_images": calib.num_images,
                    "val_images": len(val_images), "precision": precision.name, "device": self.device.type}

    @classmethod
    def from_run(cls, run_dir: str | Path, settings: EvaluationSettings) -> AccuracyEvaluator:
        """The evaluator of a run directory's supernet, on its held-out validation split."""
        device = resolve_device(settings.device)
        precision = resolve_precision(settings.precision, device)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        if device.type == "cuda":
            # Each child has new layer shapes and is evaluated once: autotuning would cost more than it saves.
            torch.backends.cudnn.benchmark = False
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        model, cfg = load_supernet(run_dir, settings.checkpoint, device)
        memory_format = torch.channels_last if cfg.get("channels_last", False) else torch.contiguous_format
        model.to(memory_format=memory_format)
        data = load_run_data(cfg)
        calib = calibration_batches(data.train, settings.calib_images, settings.calib_batch_size,
                                    calibration_seed(int(cfg.seed)), data.mean, data.std, device,
                                    memory_format)
        images, labels = _first_images(data.val, settings.val_images)
        if len(images) == 0:
            raise SearchError(f"{run_dir}: the validation split is empty, so children cannot be evaluated; "
                              "train with data.val_size > 0 (the search never uses the test split)")
        key = {"checkpoint": checkpoint_digest(Path(run_dir), settings.checkpoint),
               "validation": _digest(images, labels)}
        return cls(model, calib, images, labels, data.mean, data.std, precision=precision,
                   memory_format=memory_format, batch_size=settings.batch_size, cache_mb=settings.cache_mb,
                   key=key)

    @property
    def num_images(self) -> int:
        return len(self.val_labels)

    def __call__(self, arch: Arch) -> float:
        found = self._memo.get(arch)
        if found is None:
            found = self._memo[arch] = self._accuracy(arch)
            self.calls += 1
        return found

    def remember(self, arch: Arch, accuracy: float) -> None:
        """Take an accuracy evaluated earlier (by this evaluator's key) instead of computing it again."""
        self._memo.setdefault(arch, accuracy)

    @torch.no_grad()
    def _accuracy(self, arch: Arch) -> float:
        model = self.model
        model.set_active(arch)
        calib, val = self._resized(arch.resolution)
        with self.precision.autocast():
            recalibrate_bn(model, calib)  # batches are already at the child's resolution
            correct = torch.zeros((), dtype=torch.long, device=self.device)
            for images, labels in val:
                correct += (model(images).argmax(dim=1) == labels).sum()
        return correct.item() / self.num_images

    def _resized(self, resolution: int) -> tuple[tuple[Tensor, ...], Iterator[tuple[Tensor, Tensor]]]:
        """Calibration batches and (images, labels) validation batches at `resolution`, cached if they fit."""
        cached = self._inputs.get(resolution)
        if cached is not None:
            calib, val = cached
            return calib, zip(val, self.val_labels.split(self.batch_size), strict=True)
        channels = self.val_images.shape[1]
        size = (self.calib.num_images + self.num_images) * channels * resolution**2 * 4
        calib = tuple(self._prepare(b, resolution) for b in self.calib.batches)
        if size <= self._cache_budget:
            self._cache_budget -= size
            val = tuple(self._val_batches(resolution))
            self._inputs[resolution] = (calib, val)
            return calib, zip(val, self.val_labels.split(self.batch_size), strict=True)
        return calib, zip(self._val_batches(resolution), self.val_labels.split(self.batch_size), strict=True)

    def _val_batches(self, resolution: int) -> Iterator[Tensor]:
        for chunk in self.val_images.split(self.batch_size):
            yield self._prepare(normalize(chunk, self.mean, self.std), resolution)

    def _prepare(self, x: Tensor, resolution: int) -> Tensor:
        return resize_batch(x, resolution).contiguous(memory_format=self.memory_format)


def _first_images(dataset, limit: int | None) -> tuple[Tensor, Tensor]:
    """The first `limit` images of a split (all when None) as one uint8 tensor and their labels."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images, labels, seen = [], [], 0
    for x, y in make_loader(dataset, max(1, min(count, 1024)), shuffle=False, seed=0, epoch=0):
        if seen >= count:
            break
        images.append(x)
        labels.append(torch.as_tensor(y))
        seen += len(x)
    if not images:
        return torch.zeros(0, 1, 1, 1, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    return torch.cat(images)[:count], torch.cat(labels)[:count].long()


def _digest(images: Tensor, labels: Tensor) -> str:
    h = hashlib.sha256(images.contiguous().numpy().tobytes())
    h.update(labels.numpy().tobytes())
    return h.hexdigest()[:16]


def checkpoint_digest(run_dir: Path, which: str) -> str:
    """A content hash of the checkpoint `load_supernet` reads (best.pt, else last.pt)."""
    path = checkpoint_path(run_dir, which)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
