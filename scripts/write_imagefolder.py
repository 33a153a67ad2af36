"""Write Fashion-MNIST as an image folder: the test images as val/, a few thousand training images as train/.

    python scripts/write_imagefolder.py [OUT] [--train-images 4000] [--val-size 1000] [--format png|jpeg]
                                        [--test-images N]

train/ holds exactly the training and validation images that `data.name=fashion_mnist
data.subset=TRAIN_IMAGES data.val_size=VAL_SIZE seed=SEED` trains and validates on, and val/ the
10,000 test images (or the N that data.test_subset=N draws), so a run on the folder
(`data.name=imagefolder data.root=OUT data.val_size=VAL_SIZE`) draws from the same images as the
in-memory run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from supernet.data import TensorImageDataset, load_dataset
from supernet.data.datasets import DOWNLOAD_ROOT
from supernet.data.folder_writer import FORMATS, write_image_folder

DEFAULT_OUT = DOWNLOAD_ROOT / "fashion_mnist_folder"
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT,
                        help=f"folder (default {DEFAULT_OUT})")
    parser.add_argument("--train-images", type=int, default=4000, help="training images (data.subset)")
    parser.add_argument("--val-size", type=int, default=1000, help="validation images held out of them")
    parser.add_argument("--test-images", type=int, default=None, help="test images (default: all 10,000)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="png")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="Fashion-MNIST IDX folder (default: the system copy)")
    args = parser.parse_args()
    out = args.out.expanduser().resolve()
    if out.is_relative_to(REPO):
        sys.exit(f"error: {out} is inside the repository; write the images elsewhere (default {DEFAULT_OUT})")

    splits = load_dataset("fashion_mnist", args.root, args.val_size, args.seed, subset=args.train_images,
                          test_subset=args.test_images)
    indices = torch.cat([splits.train_indices, splits.val_indices]).sort().values
    pool = TensorImageDataset(*_pool(splits))
    start = time.perf_counter()
    manifest = {"source": "fashion_mnist", "seed": args.seed, "subset": args.train_images,
                "val_size": args.val_size, "train_indices": indices.tolist(),
                "test_indices": splits.test_indices.tolist()}
    counts = write_image_folder(out, {"train": pool, "val": splits.test}, splits.classes, args.format,
                                args.quality, manifest=manifest)
    print(f"wrote {counts['train']} training and {counts['val']} test images ({args.format}) to {out} "
          f"in {time.perf_counter() - start:.1f} s")
    print(f"train on them: supernet train data.name=imagefolder data.root={out} "
          f"data.val_size={args.val_size}")


def _pool(splits) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation images together, in the order of their indices in Fashion-MNIST."""
    order = torch.cat([splits.train_indices, splits.val_indices]).argsort()
    images = torch.cat([splits.train.images, splits.val.images])[order]
    labels = torch.cat([splits.train.labels, splits.val.labels])[order]
    return images, labels


if __name__ == "__main__":
    main()
