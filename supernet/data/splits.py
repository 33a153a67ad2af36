"""Seeded index arithmetic for holding out a validation split and capping split sizes.

Everything here works on index tensors only, so the same logic serves in-memory and lazily
decoded datasets, and the indices can be handed to tests and logs to prove disjointness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from supernet.checks import is_int, is_number
from supernet.data.errors import DatasetError


@dataclass(frozen=True)
class HoldoutIndices:
    """Indices into a dataset's own training split: what we train on and what we validate on."""

    train: torch.Tensor
    val: torch.Tensor


def resolve_val_count(val_size: int | float, num_train: int) -> int:
    """Turn ``val_size`` (a count, or a fraction in [0, 1)) into a number of held-out samples."""
    if not is_number(val_size):
        raise DatasetError(f"data.val_size must be an int count or a float fraction, got {val_size!r}")
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise DatasetError(f"data.val_size as a fraction must be in [0, 1), got {val_size}")
        count = round(val_size * num_train)
    else:
        count = val_size
    if not 0 <= count < num_train:
        raise DatasetError(
            f"data.val_size={val_size!r} holds out {count} of {num_train} training samples; "
            "it must leave at least one for training"
        )
    return count


def hold_out(
    num_train: int,
    val_size: int | float,
    seed: int,
    subset: int | None = None,
    val_subset: int | None = None,
) -> HoldoutIndices:
    """Split ``range(num_train)`` into disjoint train/val index sets, deterministically from ``seed``.

    One seeded permutation serves both: its head is the validation set and the rest is the
    training pool, so ``subset`` takes the first-k of the pool and changing it never moves a
    sample between train and val. Returned indices are sorted, which keeps lazily decoded
    datasets reading files in directory order; loaders do the shuffling.
    """
    val_count = resolve_val_count(val_size, num_train)
    permutation = torch.randperm(num_train, generator=torch.Generator().manual_seed(seed))
    val = permutation[:val_count]
    train = permutation[val_count:]
    train = train[: cap_size(subset, len(train), "data.subset")]
    val = val[: cap_size(val_subset, len(val), "data.val_subset")]
    return HoldoutIndices(train=train.sort().values, val=val.sort().values)


def seeded_subset(num_items: int, limit: int | None, seed: int, setting: str) -> torch.Tensor:
    """Sorted first-``limit`` of a seeded permutation of ``range(num_items)`` (all of it when no limit)."""
    keep = cap_size(limit, num_items, setting)
    if keep == num_items:
        return torch.arange(num_items)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_items, generator=generator)[:keep].sort().values


def cap_size(limit: int | None, available: int, setting: str) -> int:
    """How many items a size cap keeps: all when ``limit`` is None, and never more than available."""
    if limit is None:
        return available
    if not is_int(limit) or limit < 1:
        raise DatasetError(f"{setting} must be a positive int or null, got {limit!r}")
    return min(limit, available)
