"""Top-1 hits of BN-recalibrated children of one trained supernet on a range of its validation images.

The measure is training's (`supernet.run.child_eval.count_correct`, on the same calibration draw),
arranged for evaluating thousands of children: the calibration batches and the validation images are
normalised once, kept on the device and resized once per resolution (within `cache_mb`), and the supernet
is never copied. The images are the run's held-out validation split; the test set is never read here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from supernet.data import make_loader, normalize
from supernet.models import Supernet
from supernet.parallel import cpu_cores, fork_available
from supernet.run.bn_recalibration import CalibrationSet
from supernet.run.child_eval import (
    calibration_batches,
    calibration_seed,
    count_correct,
    load_run_data,
    prepare_batch,
)
from supernet.run.device import Precision, resolve_device, resolve_precision
from supernet.run.directory import checkpoint_path, load_supernet
from supernet.run.files import sha256_file
from supernet.search.accuracy_store import Request
from supernet.search.errors import SearchError
from supernet.search.settings import EvaluationSettings
from supernet.search.workers import WorkerPool
from supernet.space import Arch


class AccuracyEvaluator:
    """`correct(arch, start, stop)`: top-1 hits on validation images [start, stop); `correct_many` counts
    several children, `workers` at once; `calls` counts the children counted."""

    def __init__(self, model: Supernet, calib: CalibrationSet, val_images: Tensor, val_labels: Tensor,
                 mean, std, *, precision: Precision,
                 memory_format: torch.memory_format, batch_size: int, cache_mb: float,
                 key: dict[str, Any] | None = None, workers: int = 1, worker_threads: int = 1) -> None:
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
        self._inputs: dict[int, tuple[tuple[Tensor, ...], Tensor | None]] = {}
        self.calls = 0
        self.workers, self.worker_threads = workers, worker_threads
        self._pool: WorkerPool | None = None
        # The digest hashes the images, not their batching, and batch statistics depend on both.
        self.key = {**(key or {}), "calibration": calib.digest, "calib_images": calib.num_images,
                    "calib_batches": [len(b) for b in calib.batches],
                    "val_images": len(val_images), "precision": precision.name, "device": self.device.type}

    @classmethod
    def from_run(cls, run_dir: str | Path, settings: EvaluationSettings) -> AccuracyEvaluator:
        """The evaluator of a run directory's supernet, on its held-out validation split."""
        device = resolve_device(settings.device)
        precision = resolve_precision(settings.precision, device)
        workers, threads = _processes(settings, device)
        if workers == 1 and threads:
            torch.set_num_threads(threads)
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
        key = {"checkpoint": sha256_file(checkpoint_path(run_dir, settings.checkpoint))[:16],
               "validation": _digest(images, labels)}
        return cls(model, calib, images, labels, data.mean, data.std, precision=precision,
                   memory_format=memory_format, batch_size=settings.batch_size, cache_mb=settings.cache_mb,
                   key=key, workers=workers, worker_threads=threads or 1)

    @property
    def num_images(self) -> int:
        return len(self.val_labels)

    def correct(self, arch: Arch, start: int = 0, stop: int | None = None) -> int:
        """Top-1 hits of `arch` on validation images [start, stop) (all when stop is None)."""
        stop = self.num_images if stop is None else min(stop, self.num_images)
        calib, resized = self._resized(arch.resolution)
        labels = self.val_labels[start:stop].split(self.batch_size)
        if resized is not None:
            images: Iterator[Tensor] = iter(resized[start:stop].split(self.batch_size))
        else:
            images = (prepare_batch(normalize(chunk, self.mean, self.std), arch.resolution,
                                    self.memory_format)
                      for chunk in self.val_images[start:stop].split(self.batch_size))
        hits, _ = count_correct(self.model, arch, calib, zip(images, labels, strict=True), self.precision)
        self.calls += 1
        return hits

    def correct_many(self, requests: Sequence[Request]) -> Iterator[int]:
        """The hits of each (arch, start, stop), in order, each as soon as it is counted: by `workers`
        forked processes where there are several and more than one request, else here."""
        if self.workers < 2 or len(requests) < 2:
            for arch, start, stop in requests:
                yield self.correct(arch, start, stop)
            return
        if self._pool is None:
            self._pool = WorkerPool(self, self.workers, self.worker_threads)
        done = 0
        try:
            for hits in self._pool.count(requests):
                done += 1
                self.calls += 1
                yield hits
        finally:
            if done < len(requests):  # the caller stopped early (an error, Ctrl-C): drop the queued work
                self.close()

    def close(self) -> None:
        """Stop the worker processes (a later `correct_many` starts new ones)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> AccuracyEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _resized(self, resolution: int) -> tuple[tuple[Tensor, ...], Tensor | None]:
        """Calibration batches and all validation images at `resolution` (None when over the cache)."""
        cached = self._inputs.get(resolution)
        if cached is not None:
            return cached
        calib = tuple(prepare_batch(b, resolution, self.memory_format) for b in self.calib.batches)
        channels = self.val_images.shape[1]
        size = (self.calib.num_images + self.num_images) * channels * resolution**2 * 4
        if size > self._cache_budget:
            return calib, None
        self._cache_budget -= size
        resized = torch.cat([prepare_batch(normalize(chunk, self.mean, self.std), resolution,
                                           self.memory_format)
                             for chunk in self.val_images.split(self.batch_size)])
        self._inputs[resolution] = (calib, resized)
        return calib, resized


def _processes(settings: EvaluationSettings, device: torch.device) -> tuple[int, int | None]:
    """(worker processes, intra-op threads of each) for `settings` on `device`."""
    if device.type != "cpu":
        if (settings.workers or 1) > 1:
            raise SearchError(f"evaluation.workers={settings.workers}: on a {device.type} device children "
                              "are counted in this process; set evaluation.workers=1 or "
                              "evaluation.device=cpu")
        return 1, settings.threads
    cores = cpu_cores()
    workers = settings.workers or (cores if fork_available() else 1)
    if workers > 1 and not fork_available():
        raise SearchError(f"evaluation.workers={workers}: worker processes are forked, which only Linux "
                          "does safely; set evaluation.workers=1")
    if workers == 1:
        return 1, settings.threads
    return workers, settings.threads or max(1, cores // workers)


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
