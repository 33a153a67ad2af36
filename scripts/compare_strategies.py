"""Sandwich (BigNAS) against progressive shrinking (Once-for-All) at the same budget, on Fashion-MNIST.

Both strategies train the `small` space from scratch on the same images for the same number of epochs
(so they see the same number of images); progressive shrinking's shipped phases are scaled to that
total, keeping their proportions. Then the test accuracy (BN-recalibrated) of the same children is
reported for both: max, min and 5 fixed middle children; and the wall time of each run, training and
evaluation apart. Validation runs once, at the end, on a small split (it only has to exist).

    .venv/bin/python scripts/compare_strategies.py [--subset 8000] [--epochs 2] [--threads 1]

The last line is machine-readable JSON: {"budget": ..., "children": [...], "sandwich": ...,
"progressive_shrinking": ...}, each strategy with its test accuracies and seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from supernet.config import compose_config
from supernet.data import make_loader
from supernet.run.child_eval import child_accuracy
from supernet.space import Arch
from supernet.train.loop import Trainer

STRATEGIES = ("sandwich", "progressive_shrinking")


def build_config(strategy: str, args: argparse.Namespace) -> DictConfig:
    cfg = compose_config("train", [
        f"strategy={strategy}", "data.name=fashion_mnist", f"data.subset={args.subset}",
        f"data.val_subset={args.val_subset}", f"data.test_subset={args.test_subset}",
        f"data.batch_size={args.batch_size}", f"epochs={args.epochs}", f"seed={args.seed}",
        f"threads={args.threads}", f"val.calib_images={args.calib_images}",
        f"val.middle_children={args.middle}", "val.every_epochs=1000", "log.progress=false", "log.every=20",
        # The head dropout and sandwich step of the comparison in docs/strategies.md, which the CPU
        # training defaults have since trimmed (no dropout, one random child).
        "space.head.dropout=0.1", *(["strategy.num_random=2"] if strategy == "sandwich" else []),
    ])
    if strategy == "progressive_shrinking":
        scale_phases(cfg, args.epochs)
    return cfg


def scale_phases(cfg: DictConfig, epochs: int) -> None:
    """Stretch or shrink every phase (and its warm-up) so that the phases add up to `epochs`."""
    phases = cfg.strategy.phases
    factor = epochs / sum(phase.epochs for phase in phases)
    for phase in phases:
        phase.epochs = phase.epochs * factor
        if "warmup_epochs" in phase:
            phase.warmup_epochs = phase.warmup_epochs * factor


class TimedTrainer(Trainer):
    """Counts the seconds spent validating, so that training time can be told apart."""

    eval_seconds = 0.0

    def validate(self, epoch: int, split: str) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return super().validate(epoch, split)
        finally:
            self.eval_seconds += time.perf_counter() - start


def child_test_accuracy(trainer: Trainer, arch: Arch) -> float:
    """Test top-1 of one child after BN recalibration, as the loop computes it."""
    loader = make_loader(trainer.data.test, trainer.cfg.val.batch_size, shuffle=False, seed=trainer.cfg.seed,
                         epoch=0, pin_memory=trainer.device.type == "cuda")
    return child_accuracy(trainer.model, arch, trainer.calib, loader, trainer.data.mean, trainer.data.std,
                          trainer.device, trainer.memory_format, trainer.precision)


def run(strategy: str, args: argparse.Namespace, root: Path, console: Console) -> dict[str, Any]:
    console.rule(strategy)
    start = time.perf_counter()
    trainer = TimedTrainer(build_config(strategy, args), root / strategy, console=console)
    result = trainer.fit()
    total = time.perf_counter() - start
    children = trainer.strategy.eval_children(trainer.step, args.middle)
    passes = sum(len(trainer.strategy.children(step)) for step in range(trainer.total_steps))
    return {"trainer": trainer, "test": result.test, "children": children, "seconds": total,
            "eval_seconds": trainer.eval_seconds, "train_seconds": total - trainer.eval_seconds,
            "steps": trainer.step, "child_passes": passes,
            "images": trainer.step * trainer.batch_size}


def summary(info: dict[str, Any]) -> dict[str, Any]:
    seconds = {key: round(info[key], 1) for key in ("train_seconds", "eval_seconds", "seconds")}
    return {"test": info["test"], **seconds, "steps": info["steps"], "images": info["images"],
            "child_passes": info["child_passes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=8000, help="training images (of 55,000)")
    parser.add_argument("--epochs", type=int, default=2, help="total epochs of each strategy")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--test-subset", type=int, default=5000, help="test images (of 10,000)")
    parser.add_argument("--val-subset", type=int, default=500)
    parser.add_argument("--calib-images", type=int, default=1000, help="images for BN recalibration")
    parser.add_argument("--middle", type=int, default=5, help="fixed middle children besides max and min")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where the two runs go (default: a temp dir)")
    args = parser.parse_args()
    if args.epochs <= 0 or args.subset < args.batch_size:
        parser.error("--epochs and --subset give no training step")

    console = Console()
    root = args.out or Path(tempfile.mkdtemp(prefix="compare-strategies-"))
    runs = {name: run(name, args, root, console) for name in STRATEGIES}

    # The same children for both: the sandwich list (max, min, middle ones from the run's seed). A
    # progressive-shrinking run whose last phase covers the whole space validates exactly these; any
    # child it did not test at the end is tested here.
    reference = runs["sandwich"]["children"]
    for info in runs.values():
        tested = dict(info["children"])
        for name, arch in reference:
            if tested.get(name) != arch:
                info["test"][name] = child_test_accuracy(info["trainer"], arch)
    space = runs["sandwich"]["trainer"].model.space

    table = Table(title=f"test top-1 % after BN recalibration · {args.epochs} epochs of {args.subset} "
                        f"Fashion-MNIST images each · {args.test_subset} test images")
    for column in ("child", "params (M)", "MFLOPs", "sandwich", "prog. shrinking", "Δ (PS − S)", "arch"):
        table.add_column(column, justify="left" if column in ("child", "arch") else "right")
    for name, arch in reference:
        s, p = (100 * runs[k]["test"][name] for k in STRATEGIES)
        table.add_row(name, f"{space.params(arch) / 1e6:.3f}", f"{space.flops(arch) / 1e6:.1f}", f"{s:.2f}",
                      f"{p:.2f}", f"{p - s:+.2f}", str(arch))
    console.print(table)
    times = Table(title="wall time (s)")
    for column in ("strategy", "train", "validate + test", "total", "steps", "images", "child passes"):
        times.add_column(column, justify="left" if column == "strategy" else "right")
    for name in STRATEGIES:
        info = runs[name]
        seconds = (f"{info[key]:.0f}" for key in ("train_seconds", "eval_seconds", "seconds"))
        times.add_row(name, *seconds, str(info["steps"]), str(info["images"]), str(info["child_passes"]))
    console.print(times)
    console.print(f"runs: {root}")

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
        "threads": args.threads,
        "budget": {"epochs": args.epochs, "subset": args.subset, "batch_size": args.batch_size,
                   "test_subset": args.test_subset, "calib_images": args.calib_images, "seed": args.seed},
        "children": [{"name": name, "arch": str(arch)} for name, arch in reference],
        **{name: summary(runs[name]) for name in STRATEGIES},
    }
    print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
