"""Training crops decoded from JPEG bytes where the batch goes (nvJPEG on CUDA), against the PIL path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from supernet.data import FolderOptions, RandomResizedCrop, SampleKey, load_dataset, make_loader
from supernet.data.gpu_decode import EncodedBatch
from tests.data.folder_support import tiny_folder


def _train(root: Path, decode: str):
    options = FolderOptions(train_crop=RandomResizedCrop(16), decode=decode)
    return load_dataset("imagefolder", str(root), val_size=8, seed=0, image_size=16, folder=options).train


def _batches(root: Path, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    args = {"batch_size": 8, "shuffle": True, "seed": 0, "epoch": 0, "drop_last": True, "first_step": 3}
    encoded, labels = next(iter(make_loader(_train(root, "cuda"), **args)))
    assert isinstance(encoded, EncodedBatch)
    pil, pil_labels = next(iter(make_loader(_train(root, "pil"), **args)))
    torch.testing.assert_close(labels, pil_labels, rtol=0, atol=0)
    return encoded.to(device, non_blocking=True), pil


def test_bytes_decoded_on_the_host_match_the_pil_crops(tmp_path: Path) -> None:
    decoded, pil = _batches(tiny_folder(tmp_path / "f", image_format="jpeg"), "cpu")
    assert decoded.shape == pil.shape == (8, 3, 16, 16) and decoded.dtype == torch.uint8
    # Same crop boxes and flips; the two bilinear resamplers differ by rounding only.
    assert (decoded.float() - pil.float()).abs().mean() < 3


def test_a_png_is_refused_by_the_jpeg_decoder_naming_the_file(tmp_path: Path) -> None:
    from supernet.data import DatasetError

    train = _train(tiny_folder(tmp_path / "f", image_format="png"), "cuda")
    with pytest.raises(DatasetError, match=r"\.png: data\.decode=cuda decodes JPEG files only"):
        train[SampleKey(0, 0, 0)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_decode_matches_the_pil_crops(tmp_path: Path) -> None:
    decoded, pil = _batches(tiny_folder(tmp_path / "f", image_format="jpeg"), "cuda")
    assert decoded.device.type == "cuda"
    # nvJPEG's IDCT differs from libjpeg-turbo's by a level or two.
    assert (decoded.cpu().float() - pil.float()).abs().mean() < 4
