"""A run directory: its resolved config, the files beside it, and checkpoints (atomic, read weights_only)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from supernet.config import ConfigError, check, check_groups, conform, schema_of
from supernet.errors import SupernetError
from supernet.run.files import atomic_write_data, atomic_write_text, versions


class CheckpointError(SupernetError):
    """A missing, unreadable or mismatched checkpoint."""


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """`state` to `path` (torch), `meta` to `path.with_suffix('.json')`; neither is ever half-written.

    The state is serialised in memory first, so its size is checked against the free space before the
    disk is touched."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_data(path, buffer.getvalue())
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises a zoo of types for a damaged zip / pickle
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}); it is corrupt or truncated"
                              ) from err


def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def read_run_config(run_dir: Path) -> DictConfig:
    """The run's resolved `config.yaml`, checked against the training schema."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory: no config.yaml (made by `supernet train`)")
    cfg = conform(OmegaConf.load(path), schema_of("train"), str(path))
    check_groups(cfg)
    return cfg


def write_run_files(run_dir: Path, cfg: DictConfig, overrides: list[str], resumed: bool) -> None:
    """config.yaml (resolved), overrides.txt (appended on resume), versions.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    history = run_dir / "overrides.txt"
    earlier = history.read_text() if history.is_file() else ""
    added = ("# resume\n" if resumed else "") + "".join(f"{o}\n" for o in overrides)
    atomic_write_text(history, earlier + added)
    atomic_write_text(run_dir / "versions.json", json.dumps(versions(), indent=2) + "\n")


def require_new_run_dir(run_dir: Path) -> None:
    """Refuse to start a run over one that has checkpoints: continuing it is what `--resume` is for."""
    if checkpoint_path(run_dir, "last").exists():
        raise SupernetError(f"{run_dir} already holds a run; continue it with `supernet train --resume "
                            f"{run_dir}` (resume=True in Python) or choose another directory")


def config_for_resume(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's saved config with new `key=value` overrides applied (e.g. a longer max_steps)."""
    if not checkpoint_path(run_dir, "last").is_file():
        raise CheckpointError(f"--resume {run_dir}: no checkpoints/last.pt there; start a new run with "
                              f"`supernet train run_dir={run_dir}` or point --resume at a run directory")
    cfg = read_run_config(run_dir)
    for override in overrides:  # one at a time, so that an error names the override at fault
        try:
            cfg.merge_with_dotlist([override])
        except Exception as err:
            raise CheckpointError(f"--resume: override {override} does not apply: "
                                  f"{str(err).splitlines()[0]}") from err
    try:
        check(cfg, schema_of("train"))
        check_groups(cfg)
    except ConfigError as err:
        raise CheckpointError(f"--resume: {err}") from err
    return cfg


def checkpoint_path(run_dir: str | Path, which: str) -> Path:
    """The checkpoint file a run's `which` ("best" or "last") names; best falls back to last, since a run
    stopped before its first validation has only last.pt."""
    path = Path(run_dir) / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = Path(run_dir) / "checkpoints" / "last.pt"
    return path


def load_supernet(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"):
    """The trained supernet of a run directory, and the run's resolved config."""
    from supernet.config import space_from_config
    from supernet.models import Supernet

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    path = checkpoint_path(run_dir, which)
    state = load_checkpoint(path, map_location=device)
    model = Supernet(space_from_config(cfg))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path} does not match the space in {run_dir}/config.yaml: "
                              f"{str(err).splitlines()[0]}") from err
    return model.to(device).eval(), cfg
