"""One check that resume is exact: a run stopped and resumed ends with the weights of an uninterrupted one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from supernet.run.directory import config_for_resume, load_checkpoint
from supernet.train.loop import train


def straight_and_resumed(tmp_path: Path, make_cfg: Callable[..., DictConfig], stop: int, total: int
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train `total` steps in one go, and `stop` steps then resumed to `total`; assert both end at step
    `total` with equal weights, and return their last checkpoints (uninterrupted first)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_cfg(f"max_steps={total}"), straight)
    train(make_cfg(f"max_steps={stop}"), split)
    longer = [f"max_steps={total}"]
    train(config_for_resume(split, longer), split, resume=True, overrides=longer)
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == total
    for key, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][key], tensor, rtol=0, atol=1e-6, msg=key)
    return a, b
