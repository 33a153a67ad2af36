"""How fast one loader worker turns image files into 224 px training crops; how many workers a GPU needs.

    flock /tmp/supernet-bench.lock .venv/bin/python scripts/bench_data.py [--folder DIR] \
        [--gpu-images-per-s N]

A worker is one process on one thread doing what `data.name=imagefolder` training does per image:
open, PIL-decode, random resized crop to the decode size with flip, to a uint8 tensor. The rate is
timed in that one process (no DataLoader around it), several times; the worker count for a GPU is
the GPU step's images/s over the slowest repeat's rate. Without --folder it times ImageNet-sized
JPEGs (500x375, quality 90) cut from a real photograph (matplotlib's sample image) and written into
a temporary folder, plus the evaluation view; with --folder, that folder's train/ images.
Last line: `data imgs_per_s_per_worker=X` (the median repeat).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from supernet.data import FolderOptions, RandomResizedCrop, SampleKey, load_dataset

# The sandwich step of the OFA space at 224 px on one H100/H200-class GPU in bf16, as assumed before a
# GPU measures it; scripts/gpu_check.sh prints the measured rate and the worker count it implies.
ASSUMED_GPU_IMAGES_PER_S = 2000.0
PHOTO_SIZE = (500, 375)  # about the mean ImageNet training image


def photo_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs of ImageNet's typical size cut at random scales and places from a real photo."""
    import matplotlib.cbook

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    generator = torch.Generator().manual_seed(seed)
    for index in range(count):
        folder = root / "train" / f"class_{index % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        scale = 0.5 + 0.5 * float(torch.rand((), generator=generator))
        width, height = int(photo.width * scale), int(photo.width * scale * 0.75)
        left = int(torch.randint(0, photo.width - width + 1, (), generator=generator))
        top = int(torch.randint(0, photo.height - height + 1, (), generator=generator))
        view = photo.crop((left, top, left + width, top + height))
        view = view.resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
        if index % 2:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        view.save(folder / f"{index:05d}.jpg", "JPEG", quality=90)
    (root / "val" / "class_0").mkdir(parents=True, exist_ok=True)
    return root


def worker_rate(dataset, count: int, training: bool, step: int = 0) -> float:
    """Images per second of one process decoding ``count`` images as a training (or evaluation) loader
    would."""
    indices = [i % len(dataset) for i in range(count)]
    start = time.perf_counter()
    for position, index in enumerate(indices):
        if training:
            dataset.training_sample(SampleKey(0, step + position // 256, index))
        else:
            dataset[index]
    return count / (time.perf_counter() - start)


def measure(folder: Path, size: int, count: int, repeats: int) -> dict[str, list[float]]:
    torch.set_num_threads(1)  # a loader worker runs one thread
    options = FolderOptions(train_crop=RandomResizedCrop(size))
    train = load_dataset("imagefolder", str(folder), val_size=0, seed=0, image_size=size,
                         folder=options).train
    worker_rate(train, min(32, count), training=True)  # warm the file cache and PIL's plugins
    rates = {"train": [], "eval": []}
    for repeat in range(repeats):
        rates["train"].append(worker_rate(train, count, training=True, step=repeat * 1000))
        rates["eval"].append(worker_rate(train, count, training=False))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="an image folder (default: written photos)")
    parser.add_argument("--size", type=int, default=224, help="decode size (the space's largest resolution)")
    parser.add_argument("--images", type=int, default=400, help="images per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gpu-images-per-s", type=float, default=ASSUMED_GPU_IMAGES_PER_S,
                        help="the GPU training step's images/s that the workers must keep up with")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or photo_folder(Path(scratch) / "photos", min(args.images, 256))
        rates = measure(folder, args.size, args.images, args.repeats)
    train, evaluation = rates["train"], rates["eval"]
    per_worker = statistics.median(train)
    workers = math.ceil(args.gpu_images_per_s / min(train))
    source = str(args.folder) if args.folder else f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q90 photos"
    print(f"images:   {source}, decoded to {args.size} px, one process on one thread, {args.repeats} repeats "
          f"of {args.images}")
    print(f"training view (decode + random resized crop + flip): median {per_worker:.0f} images/s, "
          f"range {min(train):.0f}-{max(train):.0f}")
    print(f"evaluation view (decode + resize + centre crop):      median {statistics.median(evaluation):.0f} "
          f"images/s, range {min(evaluation):.0f}-{max(evaluation):.0f}")
    print(f"a GPU step of {args.gpu_images_per_s:.0f} images/s needs data.num_workers >= {workers} "
          f"(at the slowest repeat's rate); this machine has {os.cpu_count()} cores; load {os.getloadavg()}")
    if args.json:
        figures = {"source": source, "size": args.size, "train": train, "eval": evaluation,
                   "gpu_images_per_s": args.gpu_images_per_s, "workers": workers}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"data imgs_per_s_per_worker={per_worker:.0f}")


if __name__ == "__main__":
    main()
