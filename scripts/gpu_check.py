"""The Python parts of scripts/gpu_check.sh; each prints `check NAME: ok|FAIL|skip (why)` lines.

    python scripts/gpu_check.py sandwich OUT_DIR   # OFA space at 224 px, bf16, channels_last:
                                                   # no host sync in a step; images/s against the max child
    python scripts/gpu_check.py decode OUT_DIR     # nvJPEG in the training process against PIL workers
    python scripts/gpu_check.py card EXPORT_DIR    # the latency an export measured, from its card.json

Exit status: 0 when every check printed passed or was skipped, 1 otherwise.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_data

from supernet.config import compose_config
from supernet.data import FolderOptions, RandomResizedCrop, SampleKey, load_dataset
from supernet.data.gpu_decode import EncodedBatch

BATCH = 64  # per step: small, so the check stays short; the ratio of the two rates is what it reports
TIMED_STEPS = 8


def report(name: str, ok: bool, why: str) -> bool:
    print(f"check {name}: {'ok' if ok else 'FAIL'} ({why})", flush=True)
    return ok


def sandwich(out: Path) -> bool:
    from supernet.train.loop import Trainer

    cfg = compose_config("train", [
        "space=ofa_mbv3", "strategy=sandwich", "device=cuda", "precision=bf16", "channels_last=true",
        "data.name=synthetic", "data.synthetic.image_size=224", "data.synthetic.channels=3",
        f"data.synthetic.train_size={4 * BATCH}", "data.synthetic.test_size=32", "data.val_size=32",
        f"data.batch_size={BATCH}", "val.calib_images=32", "log.progress=false",
    ])
    trainer = Trainer(cfg, out / "sandwich_run")
    images, labels = (t.pin_memory() for t in next(iter(_first_batch(trainer))))
    for step in range(3):  # the first steps allocate and pick kernels
        trainer.train_step(images, labels, step)
    torch.cuda.synchronize()

    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.train_step(images, labels, 3)
        synced = None
    except RuntimeError as err:
        synced = str(err).strip().splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    children = len(trainer.strategy.children(3))
    ok = report("sandwich_sync", synced is None,
                f"{children} children, batch {BATCH}, 224 px, bf16, channels_last, sync debug mode error"
                + (f": {synced}" if synced else ": no host sync"))

    seconds = _timed(lambda step: trainer.train_step(images, labels, step), first=4)
    sandwich_rate = BATCH * TIMED_STEPS / seconds
    static_rate = BATCH * TIMED_STEPS / _static_max_child_seconds(trainer, images, labels)
    (out / "sandwich.json").write_text(json.dumps({"sandwich_images_per_s": sandwich_rate,
                                                   "static_max_images_per_s": static_rate,
                                                   "children": children}) + "\n")
    return report("sandwich_speed", sandwich_rate > 0,
                  f"sandwich step {sandwich_rate:.0f} images/s ({children} children); static max child "
                  f"{static_rate:.0f} images/s; ratio {sandwich_rate / static_rate:.2f}, "
                  f"{torch.cuda.get_device_name()}") and ok


def _first_batch(trainer):
    from supernet.data import make_loader

    return make_loader(trainer.data.train, trainer.batch_size, shuffle=True, seed=0, epoch=0, drop_last=True)


def _timed(run, first: int) -> float:
    run(first)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(first + 1, first + 1 + TIMED_STEPS):
        run(step)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def _static_max_child_seconds(trainer, images, labels) -> float:
    """One training step of the extracted max child (plain torch layers), as the loop trains one child."""
    child = trainer.model.extract(trainer.model.space.max())
    child.to(trainer.device, memory_format=torch.channels_last)
    child.train()
    optimizer = torch.optim.SGD(child.parameters(), lr=0.01, momentum=0.9, foreach=True)
    mean = torch.tensor(trainer.data.mean, device=trainer.device).view(1, -1, 1, 1) * 255
    std = torch.tensor(trainer.data.std, device=trainer.device).view(1, -1, 1, 1) * 255

    def step(_: int) -> None:
        x = ((images.to(trainer.device, non_blocking=True).float() - mean) / std).contiguous(
            memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(child(x), labels.to(trainer.device, non_blocking=True))
        loss.backward()
        optimizer.step()

    step(0)
    return _timed(step, first=1)


def decode(out: Path) -> bool:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        folder = bench_data.photo_folder(Path(scratch) / "photos", 256)
        pil = bench_data.measure(folder, 224, 128, repeats=2)["train"]
        options = FolderOptions(train_crop=RandomResizedCrop(224), decode="cuda")
        train = load_dataset("imagefolder", str(folder), val_size=0, seed=0, image_size=224,
                             folder=options).train
        batches = [EncodedBatch([train.training_sample(SampleKey(0, step, i))[0] for i in range(64)])
                   for step in range(4)]
        batches[0].to("cuda")  # nvJPEG's handles and buffers
        torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches:
            batch.to("cuda")
        torch.cuda.synchronize()
        nvjpeg = 64 * len(batches) / (time.perf_counter() - start)
    per_worker = min(pil)
    workers_all = per_worker * max(1, cores - 1)  # one core stays with the training process
    needed = ""
    measured = out / "sandwich.json"
    if measured.is_file():
        rate = json.loads(measured.read_text())["sandwich_images_per_s"]
        needed = (f"; the sandwich step's {rate:.0f} images/s need data.num_workers >= "
                  f"{math.ceil(rate / per_worker)}")
    choice = "data.decode=cuda pays here" if nvjpeg > workers_all else "PIL workers keep up: data.decode=pil"
    return report("gpu_decode", nvjpeg > 0,
                  f"nvJPEG {nvjpeg:.0f} images/s at 224 px; PIL {per_worker:.0f} images/s per worker, "
                  f"{workers_all:.0f} with {max(1, cores - 1)} of {cores} cores{needed}; {choice}")


def card(export_dir: Path) -> bool:
    found = json.loads((export_dir / "card.json").read_text())
    latency = found.get("latency") or {}
    milliseconds, where = found.get("latency_ms_measured"), latency.get("measured_on")
    return report("export_gpu", milliseconds is not None,
                  f"max child of the small space timed at {milliseconds} ms on {where}, "
                  f"{latency.get('measured_how')}")


PARTS = {"sandwich": sandwich, "decode": decode, "card": card}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in PARTS:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    return 0 if PARTS[sys.argv[1]](out) else 1


if __name__ == "__main__":
    sys.exit(main())
