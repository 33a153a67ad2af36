"""Top-1 accuracy of any predictor (eager child or a loaded export file) over labelled batches."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from supernet.export.loaders import Predictor


def top1(predict: Predictor, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[float, int]:
    """(accuracy in 0..1, number of images). Counts are summed exactly, so two runs compare with ==."""
    correct = total = 0
    for images, labels in batches:
        pred = predict(images).argmax(dim=1).cpu()
        correct += int((pred == labels.cpu()).sum())
        total += int(labels.shape[0])
    if total == 0:
        return float("nan"), 0
    return correct / total, total
