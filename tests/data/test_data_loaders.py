"""make_loader: order is a pure function of (seed, epoch); fast and per-item paths agree."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from supernet.data import TensorImageDataset, derive_seed, make_loader


def _dataset(size: int = 50) -> TensorImageDataset:
    images = torch.arange(size, dtype=torch.int64).remainder(256).to(torch.uint8)
    return TensorImageDataset(
        images.reshape(size, 1, 1, 1).expand(size, 1, 2, 2).contiguous(), torch.arange(size)
    )


class _PerItem(Dataset[tuple[torch.Tensor, int]]):
    """The same data without the TensorImageDataset type, forcing the generic per-item path."""

    def __init__(self, dataset: TensorImageDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.dataset[index]


def _order(loader: DataLoader) -> list[int]:
    return [label for _, labels in loader for label in labels.tolist()]


def test_order_is_a_function_of_seed_and_epoch() -> None:
    dataset = _dataset()
    first = _order(make_loader(dataset, 8, shuffle=True, seed=3, epoch=1))
    assert first == _order(make_loader(dataset, 8, shuffle=True, seed=3, epoch=1))
    assert first != _order(make_loader(dataset, 8, shuffle=True, seed=3, epoch=2))
    assert first != _order(make_loader(dataset, 8, shuffle=True, seed=4, epoch=1))
    assert sorted(first) == list(range(50))


def test_iterating_twice_gives_the_same_order() -> None:
    for dataset in (_dataset(), _PerItem(_dataset())):
        loader = make_loader(dataset, 8, shuffle=True, seed=0, epoch=0)
        assert _order(loader) == _order(loader)


def test_fast_and_per_item_paths_agree() -> None:
    dataset = _dataset()
    fast = list(make_loader(dataset, 8, shuffle=True, seed=5, epoch=2))
    slow = list(make_loader(_PerItem(dataset), 8, shuffle=True, seed=5, epoch=2))
    assert len(fast) == len(slow) == 7
    for (fast_images, fast_labels), (slow_images, slow_labels) in zip(fast, slow, strict=True):
        assert torch.equal(fast_images, slow_images) and torch.equal(fast_labels, slow_labels)
        assert fast_images.dtype == torch.uint8 and fast_labels.dtype == torch.int64


def test_no_shuffle_is_sequential_and_drop_last() -> None:
    loader = make_loader(_dataset(), 8, shuffle=False, seed=0, epoch=0, drop_last=True)
    assert len(loader) == 6
    assert _order(loader) == list(range(48))


def test_distributed_sampler_splits_the_data() -> None:
    dataset = _dataset()
    orders = []
    for rank in (0, 1):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=1)
        sampler.set_epoch(4)
        orders.append(_order(make_loader(dataset, 8, shuffle=True, seed=0, epoch=4, sampler=sampler)))
    assert len(orders[0]) == len(orders[1]) == 25
    assert sorted(orders[0] + orders[1]) == list(range(50))


def test_worker_processes_give_the_same_batches() -> None:
    dataset = _dataset()
    in_process = _order(make_loader(dataset, 8, shuffle=True, seed=9, epoch=0))
    assert in_process == _order(make_loader(dataset, 8, shuffle=True, seed=9, epoch=0, num_workers=1))


def test_derive_seed_separates_nearby_inputs() -> None:
    assert derive_seed(1, 0) != derive_seed(0, 1)
    assert derive_seed(1, 0) == derive_seed(1, 0)
    assert all(0 <= derive_seed(seed, epoch) < 2**63 for seed in (-1, 0, 2**70) for epoch in range(3))
