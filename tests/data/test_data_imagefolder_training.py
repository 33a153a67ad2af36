"""Image-folder training data: keyed crops through the loader, DDP shards, resume, unreadable files."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
import torch

from supernet.data import DatasetError, FolderOptions, RandomResizedCrop, SampleKey, load_dataset, make_loader
from supernet.data.settings import batch_augment, folder_options, training_crop
from supernet.train.distributed import GlobalBatchShardSampler, World
from tests.data.folder_support import tiny_folder

CROP = FolderOptions(train_crop=RandomResizedCrop(16))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tiny_folder(tmp_path / "folder")


def _train(folder: Path, options: FolderOptions = CROP):
    return load_dataset("imagefolder", str(folder), val_size=8, seed=0, image_size=16, folder=options).train


def test_training_loader_asks_for_keys_of_its_steps(folder: Path) -> None:
    train = _train(folder)
    loader = make_loader(train, 8, shuffle=True, seed=5, epoch=1, drop_last=True, first_step=10)
    keys = list(loader.batch_sampler)
    assert [key.step for batch in keys for key in batch] == [10 + i // 8 for i in range(40)]
    assert {key.seed for batch in keys for key in batch} == {5}
    images, _ = next(iter(loader))
    expected = torch.stack([train.training_sample(key)[0] for key in keys[0]])
    torch.testing.assert_close(images, expected, rtol=0, atol=0)
    # Evaluation loaders and calibration read integer indices: the centre crop, the same every time.
    first = next(iter(make_loader(train, 8, shuffle=False, seed=0, epoch=0)))[0]
    torch.testing.assert_close(first, next(iter(make_loader(train, 8, shuffle=False, seed=0, epoch=0)))[0])
    assert not torch.equal(first, images)


def test_loader_workers_decode_the_same_pixels(folder: Path) -> None:
    train = _train(folder)
    plain = list(make_loader(train, 8, shuffle=True, seed=0, epoch=0, drop_last=True, first_step=0))
    workers = list(make_loader(train, 8, shuffle=True, seed=0, epoch=0, drop_last=True, first_step=0,
                               num_workers=2))
    for (a, la), (b, lb) in zip(plain, workers, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(la, lb, rtol=0, atol=0)


def test_each_rank_decodes_its_slice_of_the_single_process_batch(folder: Path) -> None:
    train = _train(folder)
    single = list(make_loader(train, 8, shuffle=True, seed=0, epoch=2, drop_last=True, first_step=20))
    ranks = []
    for rank in range(2):
        sampler = GlobalBatchShardSampler(train, 4, World(rank=rank, local_rank=rank, size=2), seed=0)
        sampler.set_epoch(2)
        ranks.append(list(make_loader(train, 4, shuffle=True, seed=0, epoch=2, drop_last=True,
                                      sampler=sampler, first_step=20)))
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 5
    for step, (images, labels) in enumerate(single):
        torch.testing.assert_close(torch.cat([ranks[0][step][0], ranks[1][step][0]]), images, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([ranks[0][step][1], ranks[1][step][1]]), labels, rtol=0, atol=0)


@pytest.mark.parametrize("in_memory", [False, True])
def test_skipped_batches_are_the_ones_a_full_epoch_would_have_given_first(folder: Path, in_memory) -> None:
    data = (load_dataset("synthetic", None, val_size=8, seed=0).train if in_memory else _train(folder))
    args = {"batch_size": 8, "shuffle": True, "seed": 0, "epoch": 3, "drop_last": True, "first_step": 15}
    full = list(make_loader(data, **args))
    resumed = list(make_loader(data, **args, skip_batches=2))
    assert len(resumed) == len(full) - 2
    for (a, la), (b, lb) in zip(islice(full, 2, None), resumed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(la, lb, rtol=0, atol=0)


def _corrupt(folder: Path) -> Path:
    bad = next((folder / "train" / "1_dog").iterdir())
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated PNG: the header survives, the pixels do not
    return bad


def test_an_unreadable_image_is_an_error_naming_the_file(folder: Path) -> None:
    bad = _corrupt(folder)
    train = load_dataset("imagefolder", str(folder), val_size=1, seed=0, image_size=16, folder=CROP).train
    position = [path for path, _ in train.samples].index(str(bad))
    with pytest.raises(DatasetError, match=rf"{bad}: cannot decode image.*data\.bad_images=skip"):
        train[position]
    with pytest.raises(DatasetError, match=str(bad)):
        train[SampleKey(0, 0, position)]
    # Raised in a loader worker, it reaches the command line as the same single line.
    with pytest.raises(DatasetError) as raised:
        list(make_loader(train, 8, shuffle=False, seed=0, epoch=0, num_workers=1))
    assert str(raised.value).startswith(f"{bad}: cannot decode image") and "\n" not in str(raised.value)


def test_skip_leaves_unreadable_images_out_and_counts_them(folder: Path) -> None:
    bad = _corrupt(folder)
    splits = load_dataset("imagefolder", str(folder), val_size=8, seed=0, image_size=16,
                          folder=FolderOptions(bad_images="skip", train_crop=RandomResizedCrop(16)))
    assert splits.skipped == [str(bad)]
    assert len(splits.train) + len(splits.val) == 47
    assert all(image.shape == (3, 16, 16) for image, _ in (splits.train[i] for i in range(len(splits.train))))


def test_a_truncated_jpeg_is_caught_when_listing(tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path / "jpeg", train=6, test=3, image_format="jpeg")
    bad = next((folder / "train" / "0_cat").iterdir())
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    splits = load_dataset("imagefolder", str(folder), val_size=1, seed=0, image_size=16,
                          folder=FolderOptions(bad_images="skip"))
    assert splits.skipped == [str(bad)] and len(splits.train) + len(splits.val) == 5


@pytest.mark.parametrize(("settings", "message"), [
    ({"name": "fashion_mnist", "augment": {"crop": "random_resized"}},
     r"data\.augment\.crop=random_resized needs"),
    ({"name": "imagefolder", "augment": {"crop": "zoom"}}, r"data\.augment\.crop must be one of"),
    ({"name": "imagefolder", "augment": {"scale": [0.5, 1.5]}}, r"data\.augment\.scale must be \[low, hi"),
    ({"name": "imagefolder", "augment": {"ratio": [2.0, 1.0]}}, r"data\.augment\.ratio must be \[low, hi"),
    ({"name": "imagefolder", "decode": "cuda"}, r"data\.decode=cuda needs training on a CUDA device"),
    ({"name": "imagefolder", "decode": "dali"}, r"data\.decode must be one of pil, cuda"),
    ({"name": "imagefolder", "decode": "cuda", "augment": {"crop": "pad"}}, None),
    ({"name": "imagefolder", "bad_images": "ignore"}, r"data\.bad_images must be one of error, skip"),
])
def test_bad_settings_name_the_key(settings: dict, message: str | None) -> None:
    device = "cuda" if message is None else "cpu"
    with pytest.raises(DatasetError, match=message or r"data\.decode=cuda decodes training crops .* "
                                                       r"data\.augment\.crop=random_resized"):
        training_crop(settings)
        folder_options(settings, 16, training_device=device)


def test_crop_choice_decides_what_the_device_does(folder: Path) -> None:
    splits = load_dataset("imagefolder", str(folder), val_size=8, seed=0, image_size=16)
    workers = batch_augment({"name": "imagefolder", "augment": {"pad": 2, "flip": True}}, splits)
    assert (workers.padding, workers.flip) == (0, False)  # the workers crop and flip
    padded = {"name": "imagefolder", "augment": {"crop": "pad", "pad": 2, "flip": True}}
    device = batch_augment(padded, splits)
    assert (device.padding, device.flip) == (2, True)
    assert folder_options({"name": "imagefolder", "augment": {"crop": "pad"}}, 16, "cpu").train_crop is None
