"""`export_child`: one child of a trained supernet, out as standalone files that check themselves.

resolve the arch → load the supernet → recalibrate BN on the run's calibration draw → extract
(→ fold BN) → accuracy on val and test → write each format into a temp folder → load each back and
compare with the supernet child → card.json, arch.json, README.md → rename the folder into place.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from supernet.config import space_from_config
from supernet.data import DataSplits
from supernet.export import card as cards
from supernet.export.data import (
    calibration_set,
    data_settings,
    labelled_batches,
    load_splits,
    validation_images,
)
from supernet.export.errors import ExportError
from supernet.export.fold_bn import fold_batchnorm
from supernet.export.latency import measure, predict_from_lut
from supernet.export.select import Selection, select_arch
from supernet.export.staging import check_output, staged_directory
from supernet.export.verify import FormatCheck, reference_outputs, verify_export
from supernet.export.writers import DEFAULT_FORMATS, FORMATS, parse_formats
from supernet.latency import device_name, target_present
from supernet.run.bn_recalibration import recalibrate_bn
from supernet.run.child_eval import calibration_seed, count_top1
from supernet.run.directory import checkpoint_path, load_supernet, read_run_config
from supernet.run.files import atomic_write_text, sha256_file, versions
from supernet.run.lock import exclusive
from supernet.space import Arch, SearchSpace

# The trace batch and the self-check's batch sizes differ, which proves the batch axis is dynamic.
TRACE_BATCH = 2
CHECK_BATCHES = (1, 5)


@dataclass(frozen=True)
class ExportRequest:
    run_dir: Path
    arch: str | None = None
    pick: str | None = None
    max_latency_ms: float | None = None
    target: str | None = None
    out: Path | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    fold_bn: bool = False
    lut: Path | None = None
    search_dir: Path | None = None
    checkpoint: str = "best"
    device: str = "cpu"
    search_device: str | None = None  # whose front --pick / --max-latency-ms read (RUN_DIR/search/<name>)


@dataclass
class ExportResult:
    out_dir: Path
    card: dict[str, Any]
    checks: list[FormatCheck] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


class _Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start



def export_child(request: ExportRequest) -> ExportResult:
    watch = _Stopwatch()
    run_dir = Path(request.run_dir)
    if request.checkpoint not in ("best", "last"):
        raise ExportError(f"--checkpoint {request.checkpoint!r} is not one of best, last")
    if not request.formats:
        raise ExportError(f"--formats is empty; choose from {', '.join(FORMATS)}")
    formats = parse_formats(",".join(request.formats))
    # Everything a user can get wrong is checked before minutes of work, not after.
    cfg = read_run_config(run_dir)
    if not checkpoint_path(run_dir, request.checkpoint).is_file():
        raise ExportError(f"{run_dir} has no checkpoints/{request.checkpoint}.pt"
                          + (" nor last.pt" if request.checkpoint == "best" else "")
                          + "; `supernet train` writes them")
    space = space_from_config(cfg)
    selection = select_arch(space, run_dir, arch=request.arch, pick=request.pick,
                            max_latency_ms=request.max_latency_ms, target=request.target,
                            search_dir=request.search_dir, device=request.search_device)
    arch = selection.arch
    out = Path(request.out) if request.out is not None else Path("exports") / arch.id
    with exclusive(export_lock(out), f"export folder {out}"):
        return _export_into(out, request, cfg, space, selection, formats, watch)


def _export_into(out: Path, request: ExportRequest, cfg: DictConfig, space: SearchSpace,
                 selection: Selection, formats: tuple[str, ...], watch: _Stopwatch) -> ExportResult:
    arch, run_dir = selection.arch, Path(request.run_dir)
    check_output(out)
    predicted = predict_from_lut(request.lut, arch) if request.lut is not None else None
    device = _device(request.device)

    with staged_directory(out) as tmp:
        with watch.phase("load"):
            model, _ = load_supernet(run_dir, request.checkpoint, device=device)
            settings = data_settings(cfg)
            splits = load_splits(settings)
        with watch.phase("calibrate"):
            calib_info, child = _recalibrated_child(model, arch, cfg, splits, device, request.fold_bn)
        with watch.phase("accuracy"):
            eval_batch = int(cfg.val.batch_size)
            accuracy = _accuracies(child, splits, arch.resolution, eval_batch, device)
        with torch.no_grad():
            model.cpu()
            child.cpu()
            example, *inputs = validation_images(splits, arch.resolution, (TRACE_BATCH, *CHECK_BATCHES))
            references = reference_outputs(model, inputs)

        exporters: dict[str, Any] = {}
        for fmt in formats:
            with watch.phase(f"write {fmt}"):
                exporters[fmt] = _write(fmt, child, example, tmp, out)

        card = _card(request, selection, space, cfg, settings, splits, accuracy, calib_info)
        card["latency_ms_predicted"] = predicted if predicted is not None else selection.predicted_latency_ms
        card["formats"] = list(formats)
        card["exporters"] = {fmt: info for fmt, info in exporters.items() if info}
        with watch.phase("verify"):
            checks = verify_export(tmp, formats, card, inputs, references)
        card["verification"] = {
            "reference": "the supernet with the child active, BN recalibrated, eval mode",
            "inputs": "validation images", "tolerance": checks[0].tolerance,
            "batch_sizes": list(checks[0].batch_sizes), "trace_batch": TRACE_BATCH,
            "max_abs_diff": {c.format: c.max_abs_diff for c in checks},
        }
        card["files"] = {c.format: {"file": c.file, "bytes": c.bytes,
                                    "sha256": sha256_file(tmp / c.file)} for c in checks}
        if request.target is not None and target_present(request.target):
            with watch.phase("latency"):
                onnx_file = tmp / FORMATS["onnx"].filename if "onnx" in formats else None
                card["latency_ms_measured"], card["latency"]["measured_how"] = measure(
                    child, arch.resolution, request.target, space.spec.in_channels, card["latency"]["lut"],
                    onnx_file)
            if card["latency_ms_measured"] is not None:
                card["latency"]["measured_on"] = device_name(request.target)

        atomic_write_text(tmp / "arch.json", json.dumps({"arch": str(arch), "id": arch.id, **arch.to_json()},
                                                        indent=2) + "\n")
        atomic_write_text(tmp / "card.json", json.dumps(card, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", cards.render_readme(card))
    return ExportResult(out.absolute(), card, checks, watch.total, watch.phases)


def _write(fmt: str, child: nn.Module, example: torch.Tensor, tmp: Path, out: Path) -> dict[str, Any]:
    name = FORMATS[fmt].filename
    try:
        return FORMATS[fmt].write(child, example, tmp / name)
    except OSError as err:  # a full disk is a DiskFullError already; this is the rest (EIO, EROFS, ...)
        raise ExportError(f"cannot write {out / name}: {err.strerror or err}; nothing was exported") from err


def export_lock(out: Path) -> Path:
    """The lock of an export folder, in the temp dir: a bad --out is then reported by the export itself."""
    digest = hashlib.sha256(str(Path(out).absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"supernet-export-{digest}.lock"


@torch.no_grad()
def _recalibrated_child(model: nn.Module, arch: Arch, cfg: DictConfig, splits: DataSplits,
                        device: torch.device, fold_bn: bool) -> tuple[dict[str, Any], nn.Module]:
    """Recalibrate BN of `arch` inside the supernet (which stays the self-check's reference), extract it."""
    images = int(cfg.val.calib_images)
    batch = int(cfg.val.calib_batch_size)
    seed = calibration_seed(int(cfg.seed))
    calib = calibration_set(splits, images, batch, seed, device)
    model.set_active(arch)
    recalibrate_bn(model, calib.batches, arch.resolution)
    child = model.extract(arch).eval()
    info = {"split": "train", "images": calib.num_images, "batch_size": batch, "seed": seed,
            "digest": calib.digest}
    return info, fold_batchnorm(child) if fold_bn else child


def _accuracies(child: nn.Module, splits: DataSplits, resolution: int, batch_size: int, device: torch.device
                ) -> dict[str, Any]:
    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return child(x.to(device))

    out: dict[str, Any] = {}
    for name in ("val", "test"):
        dataset = getattr(splits, name)
        hits, count = count_top1(predict, labelled_batches(dataset, splits.mean, splits.std, resolution,
                                                           batch_size))
        out[f"{name}_top1"] = None if count == 0 else hits / count
        out[f"{name}_images"] = count
    out["computed_with"] = f"the exported child in float32 on {device.type}"
    return out


def _card(request: ExportRequest, selection: Selection, space: SearchSpace, cfg: DictConfig,
          settings: dict[str, Any], splits: DataSplits, accuracy: dict[str, Any],
          calibration: dict[str, Any]) -> dict[str, Any]:
    """Everything known before the files are checked; the caller adds formats, checks and latency."""
    arch = selection.arch
    run_dir = Path(request.run_dir).absolute()
    ckpt = checkpoint_path(run_dir, request.checkpoint)
    predicted_from = "lut" if request.lut is not None else "pareto" if selection.entry else None
    return {
        "card_version": cards.CARD_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "arch": str(arch),
        "arch_id": arch.id,
        "arch_json": arch.to_json(),
        "space_name": space.name,
        "space": OmegaConf.to_container(cfg.space, resolve=True),
        "num_classes": space.spec.num_classes,
        "params": space.params(arch),
        "flops": space.flops(arch),
        "accuracy": accuracy,
        "latency_ms_predicted": None,
        "latency_ms_measured": None,
        "latency": {"target": request.target or selection.target, "predicted_from": predicted_from,
                    "lut": str(Path(request.lut).absolute()) if request.lut is not None else selection.lut,
                    "measured_on": None, "measured_how": None},
        "selection": selection.describe(),
        "supernet_checkpoint": {"run_dir": str(run_dir), "file": str(ckpt),
                                "sha256": sha256_file(ckpt)},
        "calibration": calibration,
        "preprocessing": cards.preprocessing(arch.resolution, space.spec.in_channels, splits.mean, splits.std,
                                             splits.image_size),
        "data": settings,
        "bn_folded": request.fold_bn,
        "versions": versions(),
    }


def _device(name: str) -> torch.device:
    from supernet.run.device import resolve_device

    return resolve_device(name)
