"""The interface between the training loop and a training strategy.

A strategy says, for optimizer step t, which children run and how each is supervised; the loop runs
them and knows nothing of sandwich rules or shrinking phases. The children of step t are a pure function
of (seed, t), so a resumed run and every data-parallel rank see exactly the children an uninterrupted
single-process run would.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from torch import nn

from supernet.space import Arch, SearchSpace
from supernet.train.optim import Segment


@dataclass(frozen=True)
class ChildTask:
    """One child of a step and its loss: label_weight * CE(labels) + distill_weight * KL(targets)."""

    arch: Arch
    label_weight: float = 1.0
    distill_weight: float = 0.0
    distill_from: str | None = None  # "first": this step's first child (detached) | "teacher"
    dropout: bool = False


def step_rng(seed: int, step: int, salt: str = "arch") -> random.Random:
    """The generator of step `step`; string seeds are hashed with SHA-512, identical in every process."""
    return random.Random(f"{salt}:{seed}:{step}")


class Strategy(ABC):
    """Subclasses set `name` and implement the abstract methods; state is whatever resume needs."""

    name: str = "base"
    teacher: nn.Module | None = None

    def __init__(self, space: SearchSpace, cfg: DictConfig, steps_per_epoch: int) -> None:
        """`cfg` is the whole training config; `self.cfg` is its `strategy` node."""
        self.space, self.run_cfg, self.cfg = space, cfg, cfg.strategy
        self.seed, self.steps_per_epoch = cfg.seed, steps_per_epoch

    @abstractmethod
    def total_steps(self) -> int: ...

    @abstractmethod
    def segments(self) -> list[Segment]:
        """The learning-rate schedule over the whole run."""

    @abstractmethod
    def children(self, step: int) -> list[ChildTask]: ...

    def begin_step(self, step: int, model: nn.Module) -> list[str]:
        """Called before each step; returns human-readable events (e.g. 'phase 2: elastic depth')."""
        return []

    def needs_new_optimizer(self, step: int) -> bool:
        """True at steps where the optimizer must be rebuilt (e.g. after channels were re-sorted)."""
        return False

    def describe(self, step: int) -> dict[str, Any]:
        """Extra fields for metrics lines and the epoch table."""
        return {}

    def selection_group(self, step: int) -> int:
        """best.pt is chosen within the latest group only: validation scores of different groups
        (e.g. shrinking phases that validate different children) are not comparable."""
        return 0

    def eval_children(self, step: int, middle: int) -> list[tuple[str, Arch]]:
        """Children validated at the end of an epoch: max, min and `middle` fixed ones between."""
        rng = random.Random(f"middle:{self.seed}")
        named = [("max", self.space.max()), ("min", self.space.min())]
        named += [(f"mid{i}", self.space.sample(rng)) for i in range(middle)]
        return named

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # stateless by default
        return None
