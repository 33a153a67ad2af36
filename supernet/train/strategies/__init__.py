"""Training strategies behind one interface; the loop picks one by `strategy.name` here, and only here."""

from __future__ import annotations

from omegaconf import DictConfig

from supernet.errors import SupernetError
from supernet.space import SearchSpace
from supernet.train.strategies.base import ChildTask, Strategy, step_rng
from supernet.train.strategies.progressive_shrinking import ProgressiveShrinking
from supernet.train.strategies.sandwich import Sandwich

STRATEGIES: dict[str, type[Strategy]] = {Sandwich.name: Sandwich,
                                         ProgressiveShrinking.name: ProgressiveShrinking}


def build_strategy(cfg: DictConfig, space: SearchSpace, steps_per_epoch: int) -> Strategy:
    name = cfg.strategy.name
    if name not in STRATEGIES:
        raise SupernetError(f"strategy.name={name!r}: choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](space, cfg, steps_per_epoch)


__all__ = ["STRATEGIES", "ChildTask", "Strategy", "build_strategy", "step_rng"]
