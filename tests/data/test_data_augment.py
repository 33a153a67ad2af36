"""Device-side augmentation: reproducible from its generator, and crops/flips do what they say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.data import BatchAugment, normalize, random_crop_flip

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _distinct_images(batch: int = 32, channels: int = 3, size: int = 8) -> torch.Tensor:
    """Every pixel of a sample differs (1..255, never 0), so any shift or mirror is identifiable."""
    pixels = torch.arange(channels * size * size).reshape(1, channels, size, size)
    return ((pixels + torch.arange(batch).reshape(batch, 1, 1, 1)) % 255 + 1).to(torch.uint8)


def _reference_crops(image: torch.Tensor, padding: int, mode: str) -> list[torch.Tensor]:
    """All crops torchvision-style RandomCrop(padding) + optional flip could produce for one image."""
    _, height, width = image.shape
    pad_mode = "constant" if mode == "zeros" else "reflect"
    padded = F.pad(image[None].float(), [padding] * 4, mode=pad_mode)[0].to(torch.uint8)
    crops = []
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + height, left : left + width]
            crops += [crop, crop.flip(-1)]
    return crops


def test_same_generator_seed_same_output() -> None:
    images = _distinct_images()
    augment = BatchAugment(MEAN, STD, padding=2)
    first = augment(images, torch.Generator().manual_seed(7))
    again = augment(images, torch.Generator().manual_seed(7))
    other = augment(images, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_does_not_touch_global_rng() -> None:
    state = torch.random.get_rng_state()
    BatchAugment(MEAN, STD)(_distinct_images(), torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_shape_and_dtype() -> None:
    images = _distinct_images(batch=5, size=10)
    out = BatchAugment(MEAN, STD, padding=3)(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.float32
    cropped = random_crop_flip(images, torch.Generator().manual_seed(0), padding=3)
    assert cropped.shape == images.shape and cropped.dtype == torch.uint8


def test_flip_really_flips() -> None:
    images = _distinct_images(batch=64)
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=0, flip=True)
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, images, strict=True)]
    unchanged = [torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f != u for f, u in zip(flipped, unchanged, strict=True))  # each sample: exactly one
    assert 10 < sum(flipped) < 54  # and both outcomes happen


def test_flip_off_and_no_padding_is_identity() -> None:
    images = _distinct_images()
    assert torch.equal(random_crop_flip(images, torch.Generator(), padding=0, flip=False), images)


def test_zero_padding_crop_shifts_content() -> None:
    images = _distinct_images(batch=64)
    padding = 2
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=padding, flip=False)
    shifts = []
    for sample, image in zip(out, images, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-padding, padding + 1)
            for dx in range(-padding, padding + 1)
            if torch.equal(sample, _shift_with_zeros(image, dy, dx))
        ]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 5  # per-sample shifts, not one shift for the whole batch
    shifted = [i for i, shift in enumerate(shifts) if shift != (0, 0)]
    assert (out[shifted] == 0).any(dim=(1, 2, 3)).all()  # content moved, zeros came in


def _shift_with_zeros(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[y, x] = image[y + dy, x + dx], zero outside the image."""
    _, height, width = image.shape
    out = torch.zeros_like(image)
    out[:, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)] = image[
        :, max(0, dy) : height - max(0, -dy), max(0, dx) : width - max(0, -dx)
    ]
    return out


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_matches_pad_then_crop_reference(mode: str) -> None:
    images = _distinct_images(batch=16, size=6)
    out = random_crop_flip(images, torch.Generator().manual_seed(2), padding=3, padding_mode=mode)
    for sample, image in zip(out, images, strict=True):
        assert any(torch.equal(sample, crop) for crop in _reference_crops(image, 3, mode))


def test_reflect_padding_too_large() -> None:
    with pytest.raises(ValueError, match="reflect padding"):
        random_crop_flip(_distinct_images(size=4), torch.Generator(), padding=4, padding_mode="reflect")


def test_normalize_matches_formula() -> None:
    images = _distinct_images(batch=4)
    expected = (images.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.testing.assert_close(normalize(images, MEAN, STD), expected)
    single = normalize(images, (0.5,), (0.25,))  # one value broadcasts over channels
    torch.testing.assert_close(single, (images.float() / 255 - 0.5) / 0.25)
    augment = BatchAugment(MEAN, STD, padding=0, flip=False)
    torch.testing.assert_close(augment(images, torch.Generator()), expected)
    torch.testing.assert_close(augment.normalize(images), expected)


def test_normalize_rejects_mismatched_channels() -> None:
    with pytest.raises(ValueError, match="channels"):
        normalize(_distinct_images(channels=3), (0.5, 0.5), (0.2, 0.2))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_without_host_sync() -> None:
    images = _distinct_images(batch=128).cuda()
    generator = torch.Generator(device="cuda").manual_seed(0)
    augment = BatchAugment(MEAN, STD, padding=4)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = augment(images, generator)
        evaluated = augment.normalize(images)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device.type == "cuda" and out.shape == images.shape
    torch.testing.assert_close(evaluated.cpu(), normalize(images.cpu(), MEAN, STD))
