"""Writing tensors as an image folder and reading it back through data.name=imagefolder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from supernet.data import DatasetError, FolderOptions, TensorImageDataset, load_dataset
from supernet.data.folder_writer import class_folder_names, write_image_folder

FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def test_class_folders_sort_in_label_order_and_are_safe_names() -> None:
    names = class_folder_names(["T-shirt/top", "Trouser"] + [f"c{i}" for i in range(10)])
    assert names[:2] == ["00_t-shirt_top", "01_trouser"] and names == sorted(names)


def test_png_folder_reads_back_the_same_pixels_and_labels(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 1, 12, 12), dtype=torch.uint8, generator=generator)
    labels = torch.arange(20) % 4
    data = TensorImageDataset(images, labels)
    counts = write_image_folder(tmp_path / "out", {"train": data, "val": data.select(torch.arange(8))},
                                ["a", "b", "c", "d"], manifest={"seed": 0})
    assert counts == {"train": 20, "val": 8}
    assert not (tmp_path / "out.partial").exists() and (tmp_path / "out" / "manifest.json").is_file()
    splits = load_dataset("imagefolder", str(tmp_path / "out"), val_size=4, seed=0, image_size=12,
                          folder=FolderOptions(eval_crop=1.0))
    # Files are listed class by class; each one is <index>.png of the tensor it came from.
    for position, (path, label) in enumerate(splits.test.samples):
        index = int(Path(path).stem)
        image, read_label = splits.test[position]
        assert read_label == label == int(labels[index])
        torch.testing.assert_close(image, images[index].expand(3, -1, -1), rtol=0, atol=0)


def test_writer_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    data = TensorImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
    with pytest.raises(DatasetError, match="not empty"):
        write_image_folder(tmp_path / "out", {"train": data}, ["a", "b"])
    with pytest.raises(DatasetError, match="image format"):
        write_image_folder(tmp_path / "new", {"train": data}, ["a", "b"], image_format="gif")


@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST is not installed (scripts/setup.sh does it)")
def test_script_writes_the_in_memory_runs_images(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "fm"
    subprocess.run([sys.executable, "scripts/write_imagefolder.py", str(out), "--train-images", "60",
                    "--val-size", "20", "--format", "jpeg"], check=True, capture_output=True, text=True)
    memory = load_dataset("fashion_mnist", None, 20, 0, subset=60)
    folder = load_dataset("imagefolder", str(out), val_size=20, seed=0, image_size=28)
    assert len(folder.train) + len(folder.val) == 80 and len(folder.test) == 10_000
    assert folder.classes == ["0_t-shirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat", "5_sandal",
                              "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]
    pool = sorted(memory.train_indices.tolist() + memory.val_indices.tolist())
    import json

    assert json.loads((out / "manifest.json").read_text())["train_indices"] == pool
    refused = subprocess.run([sys.executable, "scripts/write_imagefolder.py", "runs/fm"], capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "inside the repository" in refused.stderr
