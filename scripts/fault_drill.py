"""Kill a tiny training with SIGKILL at random points, resume it each time, and compare the end.

The run must end with the weights of an uninterrupted run of the same config, bit for bit, and leave
no temporary file behind. Usage (scripts/fault_drill.sh takes the shared machine lock first):

    python scripts/fault_drill.py [--kills 20] [--seed 0] [--work DIR]

The last line is `faults kills=K resumed=N identical=true|false leftovers=M`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from supernet.run.directory import load_checkpoint
from supernet.train.reporting import read_metrics

# A synthetic task whose steps take a fraction of a second on one thread; a checkpoint every step, so
# that many kills land inside a checkpoint write.
RUN = ["data.name=synthetic", "data.synthetic.train_size=512", "data.synthetic.test_size=128",
       "data.val_size=128", "data.batch_size=32", "val.calib_images=64", "val.middle_children=1",
       "val.batch_size=128", "threads=1", "log.every=2", "log.progress=false", "epochs=2",
       "checkpoint_every_steps=1"]
TRAIN = [sys.executable, "-m", "supernet_cli.main", "train"]


def start(run: Path) -> tuple[subprocess.Popen, bool]:
    """Resume `run` when it has a checkpoint, else start it; return the process and whether it resumed."""
    resume = (run / "checkpoints" / "last.pt").is_file()
    args = ["--resume", str(run)] if resume else [*RUN, "--run-dir", str(run)]
    return subprocess.Popen([*TRAIN, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), resume


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"training failed (exit {proc.returncode}): {err.decode()[-2000:]}")


def timed_reference(run: Path) -> tuple[float, float]:
    """Train `run` without interruption; return seconds to its first metric line and in all."""
    t0 = time.perf_counter()
    proc, _ = start(run)
    first = None
    while proc.poll() is None:
        if first is None and (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size:
            first = time.perf_counter() - t0
        time.sleep(0.05)
    finish(proc)
    total = time.perf_counter() - t0
    return first or total, total


def same_weights(a: Path, b: Path) -> bool:
    x, y = (load_checkpoint(p / "checkpoints" / "last.pt")["model"] for p in (a, b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def leftovers(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if p.name.endswith((".tmp", ".old"))]


def drill(work: Path, kills: int, seed: int) -> tuple[int, int, bool, int]:
    rng = random.Random(seed)
    reference, run = work / "reference", work / "killed"
    startup, total = timed_reference(reference)
    print(f"uninterrupted run: {total:.1f} s ({startup:.1f} s to its first step)", flush=True)
    # Kills spread from the start-up to a little past 1/kills of the training each, so that the
    # run is still going at the last kill and some kills land before the first checkpoint.
    span = 1.5 * (total - startup) / kills
    done_kills = resumed = 0
    while done_kills < kills:
        proc, was_resume = start(run)
        resumed += was_resume
        delay = rng.uniform(0.5 * startup, startup + span)
        try:
            proc.wait(timeout=delay)
            finish(proc)  # it finished before the kill
            break
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            done_kills += 1
            step = _step(run)
            print(f"kill {done_kills:2d} after {delay:5.2f} s{' (resumed run)' if was_resume else ''}: "
                  f"last checkpoint at step {step}", flush=True)
    else:
        proc, was_resume = start(run)
        resumed += was_resume
        finish(proc)
    records = read_metrics(run / "metrics.jsonl")  # raises on a torn or glued line
    steps = [r["step"] for r in records if "loss" in r]
    print(f"metrics.jsonl: {len(records)} records, logged steps unique: {len(steps) == len(set(steps))}")
    return done_kills, resumed, same_weights(reference, run), len(leftovers(run))


def _step(run: Path) -> str:
    try:
        return str(load_checkpoint(run / "checkpoints" / "last.pt")["step"])
    except Exception:
        return "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the two runs (default: a temp one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fault-drill-"))
    work.mkdir(parents=True, exist_ok=True)
    kills, resumed, identical, left = drill(work, args.kills, args.seed)
    print(f"runs in {work}")
    print(f"faults kills={kills} resumed={resumed} identical={str(identical).lower()} leftovers={left}")


if __name__ == "__main__":
    main()
