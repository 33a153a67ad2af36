"""How much slower a supernet child runs than its extracted plain-torch twin, on this CPU.

The dynamic path pays for slicing weights, the eval weight cache's bookkeeping and extra Python per op;
this measures that cost where it shows: a training step of the max and of the min child, and an eval
forward of the min child at batch 32 and at batch 1. Dynamic and static runs alternate within each
repeat so that thermal or frequency drift lands on both; figures are medians over repeats.

    .venv/bin/python scripts/bench_overhead.py [--repeats 15] [--threads 2] [--contiguous]

On a CPU shared with other busy processes, OpenMP's default of spinning idle threads makes every
parallel region wait on a descheduled thread, multiplying times by up to ten and drowning the overhead
in noise; run with OMP_WAIT_POLICY=PASSIVE there (the header shows the policy and the load).

The last line is machine-readable:
    overhead train_max=R train_min=R eval_min=R eval1_min=R
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from supernet.config import CONFIG_DIR
from supernet.models import Supernet
from supernet.space import Arch, SearchSpace

SPACE = CONFIG_DIR / "space" / "ofa_mbv3.yaml"


@dataclass
class Case:
    name: str
    dynamic: Callable[[], object]
    static: Callable[[], object]
    inner: int  # calls per timed sample, so that one sample lasts long enough to time
    models: tuple[nn.Module, nn.Module]
    train: bool  # the mode both models are put in once, before the case runs


def at_resolution(arch: Arch, resolution: int) -> Arch:
    return Arch(resolution, arch.stages)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    params = [p for p in model.parameters() if p.requires_grad]
    # A small lr keeps the weights sane over many steps; the cost of a step does not depend on it.
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def eval_forward(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def forward() -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return forward


def sample_ms(fn: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) * 1e3 / inner


def measure(case: Case, repeats: int, warmup: int) -> tuple[list[float], list[float]]:
    """Per-call milliseconds of the dynamic and the static run, one sample each per repeat."""
    for model in case.models:
        model.train(case.train)
    for _ in range(warmup):
        case.dynamic()
        case.static()
    dyn, sta = [], []
    for r in range(repeats):
        # Alternate which goes first, so neither always runs on a cache the other has just warmed.
        order = ((dyn, case.dynamic), (sta, case.static))
        for out, fn in order if r % 2 == 0 else order[::-1]:
            out.append(sample_ms(fn, case.inner))
    return dyn, sta


def build_cases(space: SearchSpace, memory_format: torch.memory_format, resolution: int, batch: int,
                seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # parameter initialisation only; every tensor below uses `gen`
    cases = []
    for which in ("max", "min"):
        arch = at_resolution(getattr(space, which)(), resolution)
        supernet = Supernet(space).to(memory_format=memory_format)
        supernet.set_active(arch)
        child = supernet.extract(arch).to(memory_format=memory_format)
        x = torch.randn(batch, space.spec.in_channels, resolution, resolution, generator=gen)
        x = x.contiguous(memory_format=memory_format)
        y = torch.randint(0, space.spec.num_classes, (batch,), generator=gen)
        models = (supernet, child)
        inner = 1 if which == "max" else 2
        cases.append(Case(f"train_{which}", train_step(supernet, x, y), train_step(child, x, y), inner,
                          models, train=True))
        if which == "min":
            cases.append(Case("eval_min", eval_forward(supernet, x), eval_forward(child, x), 5, models,
                              train=False))
            one = x[:1].clone(memory_format=memory_format)
            cases.append(Case("eval1_min", eval_forward(supernet, one), eval_forward(child, one), 40, models,
                              train=False))
    return cases


def run(space: SearchSpace, memory_format: torch.memory_format, args: argparse.Namespace) -> dict[str, float]:
    label = "channels_last" if memory_format == torch.channels_last else "contiguous"
    print(f"\n{label}: resolution {args.resolution}, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} alternated repeats, load average {os.getloadavg()[0]:.1f}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}")
    # The ratio of medians is the figure; the ratio of minima (the least disturbed runs) is a check on it
    # when other work shares the CPU: where the two disagree, the machine was too busy to measure.
    print(f"{'case':<11}{'supernet ms':>13}{'extracted ms':>14}{'ratio':>8}{'min ratio':>11}")
    ratios = {}
    for case in build_cases(space, memory_format, args.resolution, args.batch, args.seed):
        if args.only and case.name not in args.only:
            continue
        dyn, sta = measure(case, args.repeats, args.warmup)
        ratios[case.name] = statistics.median(dyn) / statistics.median(sta)
        print(f"{case.name:<11}{statistics.median(dyn):>13.2f}{statistics.median(sta):>14.2f}"
              f"{ratios[case.name]:>8.3f}{min(dyn) / min(sta):>11.3f}", flush=True)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=SPACE)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contiguous", action="store_true", help="also measure NCHW-contiguous models")
    parser.add_argument("--only", nargs="*", default=None, help="measure only these cases (e.g. train_min)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = SearchSpace.from_yaml(args.space)
    if args.contiguous:
        run(space, torch.contiguous_format, args)
    ratios = run(space, torch.channels_last, args)
    print("overhead " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
