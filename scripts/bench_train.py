"""Benchmark: one sandwich training step vs one step of the static max child, on CPU.

OFA space at resolution 128, batch 32, 2 threads, channels_last (as `supernet train` runs on CPU).
The sandwich step is the real one from the training loop (max + min + 2 random children, in-place
distillation, one optimizer step). Prints a table and, last, the line
`train sandwich_ms=X static_max_ms=Y ratio=X/Y`.

    python scripts/bench_train.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from supernet.config import compose_config
from supernet.train.loop import Trainer


def time_ms(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    r = args.resolution
    cfg = compose_config("train", [
        # Two random children, as BigNAS's step (the CPU training default has one).
        "strategy=sandwich", "strategy.num_random=2",
        "space=ofa_mbv3", f"space.resolutions=[{r}]", "data.name=synthetic", f"data.batch_size={args.batch}",
        f"data.synthetic.image_size={r}", "data.synthetic.channels=3", "data.synthetic.num_classes=1000",
        f"data.synthetic.train_size={4 * args.batch}", "data.synthetic.test_size=32", "data.val_size=32",
        "val.calib_images=32", f"threads={args.threads}", "log.progress=false", "device=cpu",
    ])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir)
        images = torch.randint(0, 256, (args.batch, 3, r, r), dtype=torch.uint8)
        labels = torch.randint(0, 1000, (args.batch,))
        step = iter(range(10**9))
        sandwich = time_ms(lambda: trainer.train_step(images, labels, next(step)), args.repeats)

        child = trainer.model.extract(trainer.model.space.max()).train()
        child.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(child.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        x = trainer.augment(images, torch.Generator().manual_seed(0))
        x = x.contiguous(memory_format=torch.channels_last)

        def static_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(child(x), labels, label_smoothing=0.1).backward()
            optimizer.step()

        static = time_ms(static_step, args.repeats)
    s, m = statistics.median(sandwich), statistics.median(static)
    print(f"{'step':<34}{'median ms':>10}{'min ms':>10}")
    print(f"{'sandwich (max+min+2 random)':<34}{s:>10.0f}{min(sandwich):>10.0f}")
    print(f"{'static max child':<34}{m:>10.0f}{min(static):>10.0f}")
    print(f"train sandwich_ms={s:.0f} static_max_ms={m:.0f} ratio={s / m:.2f}")


if __name__ == "__main__":
    main()
