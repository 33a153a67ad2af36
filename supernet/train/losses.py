"""The loss of one child: hard labels, soft targets (in-place or teacher distillation), or a mix."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from supernet.train.strategies.base import ChildTask


def soft_target_loss(logits: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """KL(softmax(targets/T) || softmax(logits/T)) · T², the standard distillation loss (its gradient is
    that of the soft cross-entropy BigNAS and OFA use)."""
    t = temperature
    log_p = F.log_softmax(logits.float() / t, dim=1)
    q = F.softmax(targets.float() / t, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * (t * t)


def child_loss(task: ChildTask, logits: Tensor, labels: Tensor, targets: Tensor | None,
               label_smoothing: float, temperature: float) -> Tensor:
    terms = []
    if task.label_weight:
        hard = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        terms.append(task.label_weight * hard)
    if task.distill_weight:
        if targets is None:
            raise RuntimeError(f"child {task.arch} asks for distillation from {task.distill_from!r}, "
                               "but no targets were computed")
        terms.append(task.distill_weight * soft_target_loss(logits, targets, temperature))
    return sum(terms[1:], terms[0])
