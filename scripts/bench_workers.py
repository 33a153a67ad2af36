"""How fast the search counts children on this machine: worker processes against intra-op threads.

    python scripts/bench_workers.py RUN_DIR [--children 16] [--images 2500]

Counts the same random children of a trained run on the first `--images` validation images, once per
(evaluation.workers, evaluation.threads) pair: one process with one thread, one process with every core,
and one single-threaded worker per core (the default). Prints seconds per child for each.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from supernet.parallel import cpu_cores
from supernet.search import AccuracyEvaluator
from supernet.search.settings import EvaluationSettings


def seconds_per_child(run_dir: Path, workers: int, threads: int, children: int, images: int) -> float:
    evaluator = AccuracyEvaluator.from_run(run_dir, EvaluationSettings(workers=workers, threads=threads))
    space = evaluator.model.space
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(children)]
    list(evaluator.correct_many([(a, 0, 64) for a in archs[:workers * 2]]))  # start workers, fill caches
    started = time.perf_counter()
    list(evaluator.correct_many([(a, 0, images) for a in archs]))
    evaluator.close()
    return (time.perf_counter() - started) / children


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--children", type=int, default=16)
    p.add_argument("--images", type=int, default=2500)
    args = p.parse_args()
    cores = cpu_cores()
    for workers, threads in dict.fromkeys([(1, 1), (1, cores), (cores, 1)]):
        s = seconds_per_child(args.run_dir, workers, threads, args.children, args.images)
        print(f"workers={workers} threads={threads}: {s:.3f} s per child", flush=True)


if __name__ == "__main__":
    main()
