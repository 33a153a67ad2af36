"""Checkpoints: written atomically (temp file + rename) with a JSON card beside, read with weights_only."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from supernet.errors import SupernetError


class CheckpointError(SupernetError):
    """A missing, unreadable or mismatched checkpoint."""


def atomic_write_bytes(path: Path, write) -> None:
    """Call `write(file)` on a temp file in `path`'s folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; tables and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """`state` to `path` (torch), `meta` to `path.with_suffix('.json')`; neither is ever half-written."""
    atomic_write_bytes(path, lambda f: torch.save(state, f))
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


def read_run_config(run_dir: Path) -> DictConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory: no config.yaml (made by `supernet train`)")
    return OmegaConf.load(path)


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
