"""Optimizer and per-step learning-rate schedule built from the config."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from supernet.errors import SupernetError


def parameter_groups(model: nn.Module, weight_decay: float, bn_weight_decay: bool) -> list[dict]:
    """BigNAS: no weight decay on BN scales/shifts, biases and kernel-transform matrices (all 1-D/2-D
    parameters that are not convolution or linear weights)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_weight = p.ndim == 4 or (p.ndim == 2 and "transforms" not in name)
        (decay if is_weight or bn_weight_decay else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: DictConfig, device: torch.device) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.weight_decay, cfg.bn_weight_decay)
    # Fused kernels update all parameters in one launch on CUDA. On CPU torch defaults to a Python loop
    # over parameters; the foreach kernels it must be asked for cost less per tensor.
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, **fused)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), **fused)
    raise SupernetError(f"optim.name={cfg.name!r}: choose sgd or adamw")


@dataclass(frozen=True)
class Segment:
    """A stretch of optimizer steps with one base lr: linear warm-up, then `decay` down to a floor.

    One segment spans a whole sandwich run; progressive shrinking has one per phase. The lr is a pure
    function of the step, so resuming needs no scheduler state beyond the step counter.
    """

    start: int
    steps: int
    base_lr: float
    warmup_steps: int
    decay: str  # cosine | exponential | constant
    min_lr_ratio: float = 0.0
    gamma_per_step: float = 1.0  # exponential decay factor per step

    def lr(self, step: int) -> float:
        local = step - self.start
        if local < self.warmup_steps:
            return self.base_lr * (local + 1) / self.warmup_steps
        floor = self.min_lr_ratio
        if self.decay == "constant":
            factor = 1.0
        elif self.decay == "cosine":
            progress = min(1.0, (local - self.warmup_steps) / max(1, self.steps - self.warmup_steps))
            factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.decay == "exponential":
            factor = max(floor, self.gamma_per_step ** (local - self.warmup_steps))
        else:
            raise SupernetError(f"schedule.name={self.decay!r}: choose cosine, exponential or constant")
        return self.base_lr * factor


def segment_from_config(cfg: DictConfig, start: int, steps: int, steps_per_epoch: int, base_lr: float,
                        warmup_epochs: float) -> Segment:
    return Segment(start=start, steps=steps, base_lr=base_lr,
                   warmup_steps=round(warmup_epochs * steps_per_epoch), decay=cfg.name,
                   min_lr_ratio=cfg.min_lr_ratio, gamma_per_step=cfg.decay ** (1 / max(1, steps_per_epoch)))


def learning_rate(step: int, segments: list[Segment]) -> float:
    for segment in reversed(segments):
        if step >= segment.start:
            return segment.lr(step)
    return segments[0].lr(step)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
