"""Benchmark `supernet search`: front quality against random search at an equal number of true evaluations.

    python scripts/bench_search.py [RUN_DIR] [--seeds 3] [--population 10] [--generations 4] ...

For each seed: NSGA-II (`run_search`, with the ridge accuracy predictor screening five proposals per
evaluated child once a generation's worth of children is known) on a CPU latency table; then random
search evaluating exactly as many children (the max and min children plus distinct uniform samples, as
the search's first generation holds them too); and the max and min children alone. Front quality is the
hypervolume of (accuracy, predicted latency) normalised to (1 - accuracy, latency / (1.1 x latency of
the max child)) with reference point (1, 1). All runs share one accuracy evaluator (memoised by arch),
so a child evaluated by one seed or method costs nothing the second time; each run still counts it among
its own evaluations.

Without RUN_DIR a short supernet is trained first on Fashion-MNIST (a few minutes on a CPU). Without --lut
the CPU table cached for this machine is used, or built (and cached in --lut-cache). The last line is

    search hv=X hv_random=Y evals=N wall_s=S

with hypervolumes averaged over the seeds, N the mean number of true evaluations per run, and S the wall
time of the searches and random searches (training and table building excluded, reported above it).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from supernet.config import compose_config, space_from_config
from supernet.latency import LatencyTable, get_table, latency_config
from supernet.run.directory import read_run_config
from supernet.search import AccuracyEvaluator, SearchSettings, dominates, hypervolume, run_search
from supernet.search.front import LATENCY_REF_FACTOR
from supernet.search.settings import EvaluationSettings
from supernet.space import Arch, SearchSpace

SHORT_TRAINING = ["data.subset=3000", "epochs=1", "data.batch_size=64", "strategy.num_random=1",
                  "val.calib_images=256", "val.batch_size=1000", "val.middle_children=0",
                  "log.progress=false", "space.head.dropout=0.1"]  # the dropout of the README's figure


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", type=Path, help="a run made by `supernet train` (default: train)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--val-images", type=int, default=300, help="validation images per child")
    p.add_argument("--calib-images", type=int, default=128, help="BN recalibration images per child")
    p.add_argument("--no-predictor", dest="predictor", action="store_false",
                   help="no accuracy predictor (default: screen 5x offspring from the second generation on)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other search setting (configs/search.yaml), e.g. --set predictor.oversample=5")
    p.add_argument("--out", type=Path, help="keep each search's folder and the random searches' children "
                                            "here (default: a temporary folder)")
    p.add_argument("--lut", type=Path, help="a CPU latency table of the run's space")
    p.add_argument("--lut-cache", type=Path, default=Path("luts"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-default-eval", action="store_true",
                   help="also time one child with the default evaluation settings (all validation images)")
    return p.parse_args()


def short_run(console: Console) -> Path:
    from supernet.train.loop import train

    run_dir = Path("runs") / time.strftime("bench-search-%Y%m%d-%H%M%S")
    console.print(f"no RUN_DIR given: training a short supernet first ({' '.join(SHORT_TRAINING)}) into "
                  f"{run_dir}", highlight=False)
    started = time.perf_counter()
    train(compose_config("train", SHORT_TRAINING), run_dir)
    console.print(f"trained in {time.perf_counter() - started:.0f} s", highlight=False)
    return run_dir


def latency_table(space: SearchSpace, args: argparse.Namespace, console: Console) -> LatencyTable:
    started = time.perf_counter()
    # A shared CPU: most samples are delayed by other work, so a low percentile estimates the latency.
    cfg = latency_config(cache_dir=str(args.lut_cache), threads=args.threads, repeats=20, warmup=5, rounds=4,
                         statistic="p10", fit={"children": 24})
    table = get_table(space, cfg, args.lut)
    console.print(f"latency table {table.path} ({time.perf_counter() - started:.0f} s); predicted max child "
                  f"{table.predict(space.max()):.3f} ms, min child {table.predict(space.min()):.3f} ms",
                  highlight=False)
    return table


def time_one_child(evaluator: AccuracyEvaluator, space: SearchSpace, seed: int) -> float:
    """Seconds for one true evaluation of a random child (its resolution's inputs already resized)."""
    rng = random.Random(seed)
    warm = space.sample(rng)
    evaluator(warm)
    arch = warm
    while arch == warm:  # another child at the same resolution
        arch = Arch(warm.resolution, space.sample(rng).stages)
    started = time.perf_counter()
    evaluator(arch)
    return time.perf_counter() - started


def random_search(evaluator, space: SearchSpace, table, n: int, seed: int) -> list[tuple[float, float, str]]:
    """(accuracy, latency, arch) of the max and min children and n - 2 distinct uniform samples."""
    rng = random.Random(1000 + seed)
    archs = list(dict.fromkeys([space.min(), space.max()]))
    while len(archs) < n:
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    return [(evaluator(a), table.predict(a), str(a)) for a in archs[:n]]


def share_dominated(front: list[tuple[float, float]], others: list[tuple[float, float]]) -> float:
    """Share of `others` weakly dominated by some point of `front` (points as (accuracy, latency))."""
    def key(p):
        return (-p[0], p[1])
    hit = sum(any(dominates(key(f), key(o)) or key(f) == key(o) for f in front) for o in others)
    return hit / max(1, len(others))


def main() -> int:
    args = parse_args()
    console = Console(width=132)
    torch.set_num_threads(args.threads)
    run_dir = args.run_dir or short_run(console)
    space = space_from_config(read_run_config(run_dir))
    table = latency_table(space, args, console)
    latency_ref = LATENCY_REF_FACTOR * table.predict(space.max())
    evaluation = EvaluationSettings(calib_images=args.calib_images, calib_batch_size=256,
                                    val_images=args.val_images, batch_size=500, threads=args.threads)
    evaluator = AccuracyEvaluator.from_run(run_dir, evaluation)
    one_child_s = time_one_child(evaluator, space, seed=12345)
    console.print(f"one child: {one_child_s:.2f} s ({evaluator.num_images} validation + "
                  f"{evaluator.calib.num_images} calibration images, {args.threads} threads)",
                  highlight=False)
    if args.time_default_eval:
        default = AccuracyEvaluator.from_run(run_dir, EvaluationSettings(threads=args.threads))
        default_s = time_one_child(default, space, seed=12345)
        console.print(f"one child, default evaluation settings: {default_s:.2f} s ({default.num_images} "
                      f"validation + {default.calib.num_images} calibration images)", highlight=False)
        del default

    extremes = [(evaluator(a), table.predict(a)) for a in (space.min(), space.max())]
    hv_extremes = hypervolume(extremes, latency_ref)
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for seed in range(args.seeds):
            overrides = [f"seed={seed}", f"population={args.population}", f"generations={args.generations}",
                         f"out_dir={out / f'search-{seed}'}", "measure.front=false",
                         f"predictor.enabled={str(args.predictor).lower()}",
                         f"predictor.min_train={args.population}", "predictor.oversample=5", *args.overrides]
            settings = SearchSettings.from_config(compose_config("search", overrides))
            t0 = time.perf_counter()
            result = run_search(run_dir, "cpu", settings, table=table, evaluator=evaluator,
                                console=Console(quiet=True))
            search_s = time.perf_counter() - t0
            n = len(result.candidates)
            t0 = time.perf_counter()
            randoms_found = random_search(evaluator, space, table, n, seed)
            randoms = [(acc, lat) for acc, lat, _ in randoms_found]
            random_s = time.perf_counter() - t0
            (out / f"random-{seed}.json").write_text(json.dumps(randoms_found))
            front = [(e.candidate.accuracy, e.candidate.measures.latency_ms) for e in result.front]
            rows.append({"seed": seed, "evals": n, "hv": hypervolume(front, latency_ref),
                         "hv_random": hypervolume(randoms, latency_ref), "front": len(front),
                         "dominated": share_dominated(front, randoms), "search_s": search_s,
                         "random_s": random_s, "best": max(a for a, _ in front),
                         "best_random": max(a for a, _ in randoms)})
            r = rows[-1]
            console.print(f"seed {seed}: {n} evaluations each; hv {r['hv']:.4f} vs random "
                          f"{r['hv_random']:.4f}; "
                          f"{100 * r['dominated']:.0f} % of random points dominated by the front "
                          f"({search_s:.0f} s + {random_s:.0f} s)", highlight=False)
    wall_s = time.perf_counter() - started

    grid = Table(title=f"search vs random search (max/min children alone: hv {hv_extremes:.4f}); "
                       f"{evaluator.calls} distinct children evaluated in all")
    for column in ("seed", "evals", "hv search", "hv random", "front", "random dominated",
                   "best acc search", "best acc random", "search s", "random s"):
        grid.add_column(column, justify="right")
    for r in rows:
        grid.add_row(str(r["seed"]), str(r["evals"]), f"{r['hv']:.4f}", f"{r['hv_random']:.4f}",
                     str(r["front"]), f"{100 * r['dominated']:.0f} %", f"{100 * r['best']:.2f}",
                     f"{100 * r['best_random']:.2f}", f"{r['search_s']:.0f}", f"{r['random_s']:.0f}")
    console.print(grid)
    wins = sum(r["hv"] > r["hv_random"] for r in rows)
    console.print(f"search front above random search in hypervolume on {wins}/{len(rows)} seeds; max/min "
                  f"children alone: {hv_extremes:.4f}", highlight=False)
    hv = statistics.mean(r["hv"] for r in rows)
    hv_random = statistics.mean(r["hv_random"] for r in rows)
    evals = statistics.mean(r["evals"] for r in rows)  # per run; a child met again is not evaluated twice
    print(f"search hv={hv:.4f} hv_random={hv_random:.4f} evals={evals:.0f} wall_s={wall_s:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
