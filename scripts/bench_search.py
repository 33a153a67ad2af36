"""Benchmark `supernet search` on one trained run: against random search and against an earlier version of
the search at equal true evaluations, the wall time of the default search, and of adding a second device.

    python scripts/bench_search.py RUN_DIR --lut A.json --second-lut B.json [--seeds 3]
        [--before-src /path/to/older/checkout [--before-run RUN_COPY]] [--prefix-study 40]
        [--set KEY=VALUE ...]

Per seed, on a fresh accuracy store: the search with the default settings (plus --set) on table A; random
search evaluating as many children as the search did (the max and min children, then distinct uniform
samples within the limits), counted the way the search counts them (on the validation prefix, then the
front's children on every validation image); and, with --before-src, the search of that checkout (run in
a subprocess on its own code and defaults) at its last generation within as many children. Then the
search for table B on seed 0's store: the cost of one more device. Front quality is the
hypervolume of (validation accuracy on every image, predicted latency) normalised to (1 - accuracy,
latency / (1.1 x latency of the max child)), reference point (1, 1). The last line is

    search hv=H hv_random=R hv_before=B evals=N wall_s=S second_device_s=D

with H, R, B means over the seeds, N the mean children evaluated per search, S the mean wall time of
the default search, D the wall time of the second device's search.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from supernet.config import compose_config, space_from_config
from supernet.latency import LatencyTable, kendall_tau
from supernet.run.directory import read_run_config
from supernet.search import AccuracyEvaluator, AccuracyStore, SearchSettings, hypervolume, run_search
from supernet.search.front import LATENCY_REF_FACTOR, pareto_front
from supernet.search.objectives import ChildMeasures, constraints_from, feasible
from supernet.search.settings import StopSettings
from supernet.search.store import Candidate
from supernet.space import SearchSpace

# Stand-in devices for when no table can be timed here: analytic latencies (ms) of a compute-bound
# device (FLOPs dominate) and of a launch-bound one (depth and resolution dominate).
STAND_IN = r"""
class StandIn:
    def __init__(self, space, kind):
        self.space, self.kind = space, kind
    def predict(self, arch):
        mflops, blocks = self.space.flops(arch) / 1e6, sum(arch.depths)
        if self.kind == "compute":
            return 0.05 + 0.04 * mflops + 0.01 * blocks
        return 0.1 + 0.004 * mflops + 0.03 * blocks + 0.002 * arch.resolution
"""
exec(STAND_IN)

# Runs the older search in its own interpreter (its own package on PYTHONPATH) and prints its
# generations as JSON: it stops once it has evaluated `n` children.
BEFORE_DRIVER = STAND_IN + r"""
import json, sys
from rich.console import Console
from supernet.config import compose_config, space_from_config
from supernet.run.directory import read_run_config
from supernet.search import SearchSettings, run_search
run_dir, lut, n, store, overrides = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
try:  # a search that keeps a run-wide accuracy store gets a fresh one, as each seed here does
    from supernet.search.settings import EvaluationSettings
    if "store_dir" in EvaluationSettings.__dataclass_fields__:
        overrides.append(f"evaluation.store_dir={store}")
except ImportError:
    pass
space = space_from_config(read_run_config(run_dir))
table = StandIn(space, lut[len("stand-in:"):]) if lut.startswith("stand-in:") else None
rows = []
class Enough(Exception):
    pass
def seen(stats):
    rows.append({"generation": stats.generation, "evaluations": stats.total_evaluations,
                 "hypervolume": stats.hypervolume, "seconds": stats.seconds})
    if stats.total_evaluations >= n:
        raise Enough
try:
    run_search(run_dir, "cpu", SearchSettings.from_config(compose_config("search", overrides)),
               lut=None if table else lut, table=table, console=Console(quiet=True), on_generation=seen)
except Enough:
    pass
print("ROWS " + json.dumps(rows))
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a run made by `supernet train`")
    p.add_argument("--lut", required=True, help="the first device's CPU latency table, or stand-in:compute")
    p.add_argument("--second-lut", help="a second device's table (timed as one more device), or "
                                        "stand-in:launch")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--before-src", type=Path, help="an older checkout whose search to compare with")
    p.add_argument("--before-run", type=Path,
                   help="the run as the older checkout reads it (default: RUN_DIR), e.g. a copy whose "
                        "config.yaml drops keys that checkout does not know")
    p.add_argument("--prefix-study", type=int, default=0, metavar="N",
                   help="also count N random children on every image and report Kendall tau of prefixes")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a search setting for every search here (configs/search.yaml)")
    p.add_argument("--before-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for the older search (its own schema), e.g. its evaluation settings")
    p.add_argument("--out", type=Path, help="keep every folder here (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=2,
                   help="intra-op threads of the earlier search, which counts children in its own process "
                        "(this one shares the cores among its worker processes: evaluation.workers)")
    return p.parse_args()


def settings_for(out: Path, store: Path, seed: int, overrides: list[str]) -> SearchSettings:
    return SearchSettings.from_config(compose_config("search", [
        f"seed={seed}", f"out_dir={out}", f"evaluation.store_dir={store}", *overrides]))


def random_search(space: SearchSpace, settings: SearchSettings, measures: ChildMeasures,
                  evaluator: AccuracyEvaluator, n: int, seed: int, store_dir: Path) -> tuple[float, int]:
    """Hypervolume of `n` random children counted as the search counts them, and the promotions made."""
    constraints = constraints_from(settings.limits)
    rng = random.Random(1000 + seed)
    archs = [a for a in dict.fromkeys([space.min(), space.max()]) if feasible(measures(a), constraints)]
    while len(archs) < n:
        arch = space.sample(rng)
        if arch not in archs and feasible(measures(arch), constraints):
            archs.append(arch)
    store = AccuracyStore(store_dir, evaluator.key)
    full = evaluator.num_images
    prefix = min(settings.evaluation.screen_images or full, full)
    archs = archs[:n]
    records = store.evaluate([(a, prefix, None) for a in archs], evaluator.correct_many)
    known = {a: record for a, (record, _) in zip(archs, records, strict=True)}
    promotions = 0
    while True:
        pool = [Candidate(a, r.accuracy, measures(a), 0, r.images) for a, r in known.items()]
        todo = [c.arch for c in pareto_front(pool, settings.objectives) if c.images < full]
        if not todo:
            front = pareto_front(pool, ("accuracy", "latency_ms"))
            ref = LATENCY_REF_FACTOR * measures(space.max()).latency_ms
            return hypervolume([(c.accuracy, c.measures.latency_ms) for c in front], ref), promotions
        records = store.evaluate([(a, full, known[a]) for a in todo], evaluator.correct_many)
        for a, (record, _) in zip(todo, records, strict=True):
            known[a] = record
            promotions += 1


def load_device(space: SearchSpace, lut: str):
    return StandIn(space, lut[len("stand-in:"):]) if lut.startswith("stand-in:") else LatencyTable.load(lut)  # noqa: F821


def before_search(src: Path, run_dir: Path, lut: str, n: int, seed: int, out: Path, threads: int,
                  shared: list[str]) -> tuple[float, int, float]:
    """(hypervolume, children evaluated, seconds) of the older search once it has evaluated `n`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    link = src / "supernet" / "configs"
    if not link.exists() and (src / "configs").is_dir():
        link.symlink_to(Path("..") / "configs")  # where an installed copy has them; else this checkout's win
    overrides = [f"seed={seed}", f"out_dir={out}", f"evaluation.threads={threads}", "progress=false", *shared]
    done = subprocess.run([sys.executable, "-c", BEFORE_DRIVER, str(run_dir), str(lut), str(n),
                           str(out / "accuracy"), *overrides],
                          env=env, cwd=src, capture_output=True, text=True, check=False)
    line = next((row for row in done.stdout.splitlines() if row.startswith("ROWS ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the search in {src} failed:\n{done.stderr[-2000:]}")
    rows = json.loads(line[5:])
    # The last generation within `n` children: the one that crossed `n` evaluated more than this search did.
    within = [r for r in rows if r["evaluations"] <= n] or rows[:1]
    return within[-1]["hypervolume"], within[-1]["evaluations"], sum(r["seconds"] for r in within)


def prefix_study(evaluator: AccuracyEvaluator, space: SearchSpace, n: int, console: Console) -> None:
    """Kendall tau between the accuracy on the first k validation images and on all, over n children."""
    rng = random.Random(4321)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(n)))
    cuts = [k for k in (250, 500, 1000, 2000) if k < evaluator.num_images]
    started = time.perf_counter()
    counts = {k: [] for k in cuts}
    totals = []
    for arch in archs:
        previous, hits = 0, 0
        for k in [*cuts, evaluator.num_images]:
            hits += evaluator.correct(arch, previous, k)
            previous = k
            if k in counts:
                counts[k].append(hits / k)
        totals.append(hits / evaluator.num_images)
    taus = ", ".join(f"first {k}: tau {kendall_tau(counts[k], totals):.3f}" for k in cuts)
    console.print(f"prefix study, {len(archs)} random children ({time.perf_counter() - started:.0f} s): "
                  f"{taus}", highlight=False)


def main() -> int:
    args = parse_args()
    console = Console(width=140)
    console.print(f"load average before: {os.getloadavg()}", highlight=False)
    space = space_from_config(read_run_config(args.run_dir))
    table = load_device(space, args.lut)
    overrides = ["progress=false", *args.overrides]
    evaluator = AccuracyEvaluator.from_run(args.run_dir, settings_for(Path("."), Path("."), 0,
                                                                      overrides).evaluation)
    if args.prefix_study:
        prefix_study(evaluator, space, args.prefix_study, console)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for seed in range(args.seeds):
            settings = settings_for(out / f"search-{seed}", out / f"store-{seed}", seed, overrides)
            result = run_search(args.run_dir, "cpu", settings, table=table, evaluator=evaluator,
                                console=Console(quiet=True))
            n = result.evaluations_now
            taus = [g.predictor_tau for g in result.generations if g.predictor_tau is not None]
            row = {"seed": seed, "evals": n, "promoted": result.promotions_now, "hv": result.hypervolume,
                   "wall_s": result.wall_s, "front": len(result.front),
                   "tau": statistics.mean(taus) if taus else float("nan"),
                   "skipped": sum(g.skipped for g in result.generations)}
            t0 = time.perf_counter()
            row["hv_random"], row["random_promoted"] = random_search(
                space, settings, ChildMeasures(space, table), evaluator, n, seed,
                out / f"random-store-{seed}")
            row["random_s"] = time.perf_counter() - t0
            if args.before_src:
                lut = args.lut if args.lut.startswith("stand-in:") else str(Path(args.lut).absolute())
                row["hv_before"], row["before_evals"], row["before_s"] = before_search(
                    args.before_src, (args.before_run or args.run_dir).absolute(), lut, n, seed,
                    (out / f"before-{seed}").absolute(), args.threads, args.before_set)
            rows.append(row)
            console.print(f"seed {seed}: {json.dumps({k: round(v, 4) for k, v in row.items()})}; load "
                          f"{os.getloadavg()[0]:.2f}", highlight=False)
        second_s = float("nan")
        if args.second_lut:
            second = load_device(space, args.second_lut)
            settings = settings_for(out / "search-0-second", out / "store-0", 0, overrides)
            result = run_search(args.run_dir, "cpu", settings, table=second, evaluator=evaluator,
                                console=Console(quiet=True))
            second_s = result.wall_s
            console.print(f"second device ({args.second_lut}): {second_s:.0f} s, {result.evaluations_now} "
                          f"children evaluated, {result.promotions_now} on every image, hv "
                          f"{result.hypervolume:.4f}, front {len(result.front)}, generations "
                          f"{len(result.generations)}; load {os.getloadavg()[0]:.2f}", highlight=False)
            if result.generations[-1].generation < settings.generations:  # it stopped on a plateau
                endless = StopSettings(patience=None, seeded_patience=None)
                longer = run_search(args.run_dir, "cpu", replace(settings, stop=endless),
                                    table=second, evaluator=evaluator, console=Console(quiet=True))
                console.print(f"  the same device run to generation {settings.generations}: "
                              f"{longer.wall_s:.0f} s more, {longer.evaluations_now} more children, hv "
                              f"{longer.hypervolume:.4f}", highlight=False)

    grid = Table(title="search vs random search vs the earlier search, at equal children evaluated")
    columns = ("seed", "evals", "on all images", "hv", "hv random", "hv before", "before evals", "front",
               "surrogate tau", "skipped", "search s", "random s", "before s")
    keys = ("seed", "evals", "promoted", "hv", "hv_random", "hv_before", "before_evals", "front", "tau",
            "skipped", "wall_s", "random_s", "before_s")
    for column in columns:
        grid.add_column(column, justify="right")
    for r in rows:
        grid.add_row(*(_cell(r.get(k)) for k in keys))
    console.print(grid)
    hv = statistics.mean(r["hv"] for r in rows)
    hv_random = statistics.mean(r["hv_random"] for r in rows)
    hv_before = statistics.mean(r["hv_before"] for r in rows) if args.before_src else float("nan")
    evals = statistics.mean(r["evals"] for r in rows)
    wall_s = statistics.mean(r["wall_s"] for r in rows)
    console.print(f"load average after: {os.getloadavg()}", highlight=False)
    print(f"search hv={hv:.4f} hv_random={hv_random:.4f} hv_before={hv_before:.4f} evals={evals:.0f} "
          f"wall_s={wall_s:.0f} second_device_s={second_s:.0f}")
    return 0


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) and value < 1 else f"{value:.0f}" \
        if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
