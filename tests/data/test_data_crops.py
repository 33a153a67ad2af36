"""Training and evaluation crops: the training crop is a pure function of (seed, step, index)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from supernet.data import CentreCrop, RandomResizedCrop, SampleKey


def _photo(width: int = 60, height: int = 40) -> Image.Image:
    """A deterministic RGB image whose pixels all differ, so any shift of the crop shows."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator)
    return Image.fromarray(pixels.numpy())


def test_training_crop_depends_only_on_the_key() -> None:
    crop = RandomResizedCrop(size=24)
    image = _photo()
    key = SampleKey(seed=3, step=17, index=5)
    again = RandomResizedCrop(size=24)(image.copy(), key)
    torch.testing.assert_close(crop(image, key), again, rtol=0, atol=0)
    others = [SampleKey(4, 17, 5), SampleKey(3, 18, 5), SampleKey(3, 17, 6)]
    boxes = {crop.box(k, 60, 40) for k in [key, *others]}
    assert len(boxes) == 4, boxes  # seed, step and index each change the crop


def test_training_crop_is_the_same_in_another_process() -> None:
    # String-seeded random.Random is SHA-512 based: no hash randomisation, no process state.
    code = ("from supernet.data import RandomResizedCrop, SampleKey; "
            "print(tuple(RandomResizedCrop(24).box(SampleKey(1, 2, 3), 500, 375)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tuple(RandomResizedCrop(24).box(SampleKey(1, 2, 3), 500, 375)))


def test_training_crop_boxes_follow_scale_ratio_and_flip() -> None:
    crop = RandomResizedCrop(size=32, scale=(0.25, 0.5), ratio=(0.5, 2.0))
    boxes = [crop.box(SampleKey(0, step, 0), 200, 100) for step in range(400)]
    for box in boxes:
        assert box.left >= 0 and box.left + box.width <= 200 and box.top >= 0 and box.top + box.height <= 100
        # Rounding the sides moves the area and ratio a little off their bounds.
        assert 0.23 <= box.width * box.height / 20000 <= 0.52
        assert 0.45 <= box.width / box.height <= 2.1
    flipped = sum(box.flip for box in boxes) / len(boxes)
    assert 0.4 < flipped < 0.6
    unflipped = RandomResizedCrop(32, flip=False)
    assert not any(unflipped.box(SampleKey(0, s, 0), 200, 100).flip for s in range(50))


def test_training_crop_pixels_are_torchvisions_resized_crop() -> None:
    crop = RandomResizedCrop(size=24)
    image = _photo()
    for step in range(6):
        key = SampleKey(0, step, 0)
        box = crop.box(key, *image.size)
        expected = TF.resized_crop(image, box.top, box.left, box.height, box.width, [24, 24],
                                   interpolation=TF.InterpolationMode.BILINEAR)
        if box.flip:
            expected = TF.hflip(expected)
        torch.testing.assert_close(crop(image, key), TF.pil_to_tensor(expected), rtol=0, atol=0)


def test_out_of_reach_ratio_falls_back_to_a_central_crop() -> None:
    box = RandomResizedCrop(8, scale=(0.99, 1.0), ratio=(1.0, 1.0)).box(SampleKey(0, 0, 0), 300, 10)
    assert (box.width, box.height, box.top) == (10, 10, 0) and box.left == 145


def test_centre_crop_keeps_an_image_of_its_size_and_matches_resize_then_crop() -> None:
    square = _photo(28, 28)
    torch.testing.assert_close(CentreCrop(28, 1.0)(square), TF.pil_to_tensor(square), rtol=0, atol=0)
    image = _photo(90, 60)
    ours = CentreCrop(32, 0.875)(image).float()
    resized = TF.resize(image, round(32 / 0.875), interpolation=TF.InterpolationMode.BILINEAR)
    reference = TF.pil_to_tensor(TF.center_crop(resized, [32, 32])).float()
    assert ours.shape == (3, 32, 32)
    # One resampling pass instead of resize-then-crop: the same view, pixels within interpolation error.
    assert (ours - reference).abs().mean() < 25, (ours - reference).abs().mean()
    assert (ours - reference).abs().mean() < (ours - reference.flip(-1)).abs().mean()


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_eval_crop_out_of_range_names_the_key(fraction: float) -> None:
    from supernet.data import DatasetError, FolderOptions

    with pytest.raises(DatasetError, match=r"data\.eval_crop"):
        FolderOptions(eval_crop=fraction)
