"""The run directory: everything needed to continue or audit a training run."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime
from pathlib import Path

import torch
import torchvision
from omegaconf import DictConfig, OmegaConf

from supernet.checkpoint import CheckpointError, atomic_write_text, read_run_config


def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("supernet")
    except PackageNotFoundError:
        ours = "unknown"
    return {"supernet": ours, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": sys.version.split()[0], "cuda": torch.version.cuda or "none",
            "cudnn": str(torch.backends.cudnn.version()), "platform": platform.platform()}


def write_run_files(run_dir: Path, cfg: DictConfig, overrides: list[str], resumed: bool) -> None:
    """config.yaml (resolved), overrides.txt (appended on resume), versions.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    with open(run_dir / "overrides.txt", "a") as f:
        f.write(("# resume\n" if resumed else "") + "".join(f"{o}\n" for o in overrides))
    atomic_write_text(run_dir / "versions.json", json.dumps(versions(), indent=2) + "\n")


def config_for_resume(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's saved config with new `key=value` overrides applied (e.g. a longer max_steps)."""
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise CheckpointError(f"--resume {run_dir}: no checkpoints/last.pt there; start a new run with "
                              f"`supernet train run_dir={run_dir}` or point --resume at a run directory")
    cfg = read_run_config(run_dir)
    OmegaConf.set_struct(cfg, True)
    try:
        cfg.merge_with_dotlist(list(overrides))
    except Exception as err:
        raise CheckpointError(f"--resume: override {' '.join(overrides)} does not apply: "
                              f"{str(err).splitlines()[0]}") from err
    return cfg
