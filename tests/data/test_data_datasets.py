"""load_dataset: real Fashion-MNIST, seeded disjoint splits, helpful errors, imagefolder, synthetic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from supernet.data import DatasetError, DataSplits, dataset_names, load_dataset, write_idx

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
needs_fashion_mnist = pytest.mark.skipif(
    not all((FASHION_ROOT / name).is_file() for name in FASHION_FILES),
    reason=f"Fashion-MNIST IDX files not in {FASHION_ROOT} (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def fashion() -> DataSplits:
    return load_dataset("fashion_mnist", None, val_size=5000, seed=0)


@needs_fashion_mnist
def test_fashion_mnist_shapes_and_counts(fashion: DataSplits) -> None:
    assert len(fashion.train) + len(fashion.val) == 60000
    assert len(fashion.val) == 5000
    assert len(fashion.test) == 10000
    assert (fashion.num_classes, fashion.in_channels, fashion.image_size) == (10, 1, 28)
    assert len(fashion.classes) == 10 and len(fashion.mean) == len(fashion.std) == 1
    image, label = fashion.train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8
    assert isinstance(label, int) and 0 <= label < 10
    test_image, _ = fashion.test[9999]
    assert test_image.shape == (1, 28, 28)


@needs_fashion_mnist
def test_fashion_mnist_val_is_disjoint_from_train(fashion: DataSplits) -> None:
    train, val = set(fashion.train_indices.tolist()), set(fashion.val_indices.tolist())
    assert not train & val
    assert train | val == set(range(60000))


def _synthetic(seed: int, **kwargs: object) -> DataSplits:
    return load_dataset(
        "synthetic", None, seed=seed, synthetic={"train_size": 300, "test_size": 50}, **kwargs
    )


def test_split_is_deterministic_and_seed_dependent() -> None:
    first, again, other = _synthetic(1, val_size=60), _synthetic(1, val_size=60), _synthetic(2, val_size=60)
    assert torch.equal(first.val_indices, again.val_indices)
    assert torch.equal(first.train.images, again.train.images)
    assert not torch.equal(first.val_indices, other.val_indices)
    assert not set(first.train_indices.tolist()) & set(first.val_indices.tolist())
    assert len(first.train) == 240 and len(first.val) == 60 and len(first.test) == 50


def test_val_size_as_fraction() -> None:
    splits = _synthetic(0, val_size=0.25)
    assert len(splits.val) == 75 and len(splits.train) == 225


@pytest.mark.parametrize("bad", [1.0, -0.1, 300, -1, True, "10"])
def test_bad_val_size(bad: object) -> None:
    with pytest.raises(DatasetError, match="val_size"):
        _synthetic(0, val_size=bad)


def test_subset_caps_train_only_and_keeps_val() -> None:
    full = _synthetic(3, val_size=50)
    capped = _synthetic(3, val_size=50, subset=40)
    assert len(capped.train) == 40
    assert set(capped.train_indices.tolist()) <= set(full.train_indices.tolist())
    assert torch.equal(capped.val_indices, full.val_indices)
    assert len(capped.test) == len(full.test)


def test_val_and_test_subsets() -> None:
    splits = _synthetic(3, val_size=50, val_subset=10, test_subset=20)
    assert len(splits.val) == 10 and len(splits.test) == 20
    assert len(splits.test_indices.unique()) == 20
    assert not set(splits.train_indices.tolist()) & set(splits.val_indices.tolist())
    # Samples held out but not kept for validation still never enter training.
    assert len(splits.train) == 250


def test_subset_larger_than_data_keeps_everything() -> None:
    assert len(_synthetic(0, val_size=50, subset=10_000).train) == 250


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'mnistt'") as caught:
        load_dataset("mnistt", None, val_size=0.1, seed=0)
    for name in ("fashion_mnist", "cifar10", "imagefolder", "synthetic"):
        assert name in str(caught.value)
    assert set(dataset_names()) == {"fashion_mnist", "cifar10", "imagefolder", "synthetic"}


def test_missing_fashion_root_says_where_and_how(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(DatasetError) as caught:
        load_dataset("fashion_mnist", str(missing), val_size=0.1, seed=0)
    message = str(caught.value)
    assert str(missing) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data.root" in message and "data.download=true" in message


def _write_fake_fashion(directory: Path, train: int, test: int, label_count: int | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for prefix, count in (("train", train), ("t10k", test)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.arange(label_count or count).remainder(10).to(torch.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)  # plain, as torchvision leaves them


def test_fashion_mnist_from_root_in_torchvision_layout(tmp_path: Path) -> None:
    _write_fake_fashion(tmp_path / "FashionMNIST" / "raw", train=40, test=12)
    splits = load_dataset("fashion_mnist", str(tmp_path), val_size=10, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 12)
    assert splits.train[0][0].shape == (1, 28, 28)


def test_fashion_mnist_label_count_mismatch(tmp_path: Path) -> None:
    _write_fake_fashion(tmp_path, train=40, test=12, label_count=39)
    with pytest.raises(DatasetError, match="labels-idx1-ubyte: 39 labels"):
        load_dataset("fashion_mnist", str(tmp_path), val_size=10, seed=0)


def test_in_memory_datasets_refuse_resizing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="image_size=32 is not supported"):
        load_dataset("fashion_mnist", str(tmp_path), val_size=0.1, seed=0, image_size=32)


def test_missing_cifar10_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        load_dataset("cifar10", str(tmp_path), val_size=0.1, seed=0)
    message = str(caught.value)
    assert str(tmp_path) in message and "data.download=true" in message


def _write_image_tree(root: Path, layout: dict[str, dict[str, int]]) -> None:
    for split, classes in layout.items():
        for class_name, count in classes.items():
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for index in range(count):
                # Non-square and mixed-mode images exercise the resize + crop + RGB conversion.
                mode, size = ("L", (30, 20)) if index % 2 else ("RGB", (20, 40))
                Image.new(mode, size, color=index * 20 if mode == "L" else (index * 20, 0, 0)).save(
                    folder / f"{index}.png"
                )


def test_imagefolder_splits_and_decoding(tmp_path: Path) -> None:
    _write_image_tree(tmp_path, {"train": {"cat": 6, "dog": 4, "eel": 5}, "val": {"cat": 2, "eel": 3}})
    splits = load_dataset("imagefolder", str(tmp_path), val_size=5, seed=0, image_size=16)
    assert splits.classes == ["cat", "dog", "eel"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 5, 5)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (3, 16, 3)
    image, _ = splits.val[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8
    # The test folder lacks "dog"; its "eel" images must still get the training label 2.
    assert sorted(label for _, label in splits.test) == [0, 0, 2, 2, 2]
    assert not set(splits.train_indices.tolist()) & set(splits.val_indices.tolist())


def test_imagefolder_default_size_is_224(tmp_path: Path) -> None:
    _write_image_tree(tmp_path, {"train": {"a": 2, "b": 2}, "val": {"a": 1}})
    splits = load_dataset("imagefolder", str(tmp_path), val_size=1, seed=0)
    assert splits.image_size == 224 and splits.train[0][0].shape == (3, 224, 224)


def test_imagefolder_needs_train_and_val(tmp_path: Path) -> None:
    _write_image_tree(tmp_path, {"train": {"a": 2}})
    with pytest.raises(DatasetError, match="val"):
        load_dataset("imagefolder", str(tmp_path), val_size=1, seed=0)
    with pytest.raises(DatasetError, match=r"data\.root"):
        load_dataset("imagefolder", None, val_size=1, seed=0)


def test_imagefolder_unknown_test_class(tmp_path: Path) -> None:
    _write_image_tree(tmp_path, {"train": {"a": 2}, "val": {"zebra": 1}})
    with pytest.raises(DatasetError, match="zebra"):
        load_dataset("imagefolder", str(tmp_path), val_size=1, seed=0)


def test_synthetic_shapes_and_determinism() -> None:
    options = {"num_classes": 4, "image_size": 12, "channels": 1, "train_size": 64, "test_size": 16}
    first = load_dataset("synthetic", None, val_size=16, seed=5, synthetic=options)
    again = load_dataset("synthetic", None, val_size=16, seed=5, synthetic=options)
    assert first.train.images.shape == (48, 1, 12, 12)
    assert (first.num_classes, first.in_channels, first.image_size) == (4, 1, 12)
    assert torch.equal(first.test.images, again.test.images)
    assert all(0.0 < value < 1.0 for value in first.mean + first.std)


def test_synthetic_rejects_unknown_keys() -> None:
    with pytest.raises(DatasetError, match="num_clases"):
        load_dataset("synthetic", None, val_size=0.1, seed=0, synthetic={"num_clases": 3})
