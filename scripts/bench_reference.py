"""How well each reference network cancels the machine's speed: the wander of paired ratios over time.

    .venv/bin/python scripts/bench_reference.py                  # small space, 12 groups per reference
    .venv/bin/python scripts/bench_reference.py --groups 20 --space ofa_mbv3 --resolutions 128

The same 8 random children (and 16 of their blocks) are timed again and again in pairs, by one measurer
per reference, the references taking turns so that every one meets the same phases of the machine. For
each timing, the mean log-deviation of the 8 children from their own medians is that moment's shift; a
reference that slows down and speeds up with the machine as the children do keeps it small.

References: the fixed network; the space's smallest child; the same child fed a smaller input (half its
resolution), which costs about as much but touches less memory per layer.

Last line: `reference shift_pct fixed_network=X smallest_child=Y smallest_child_half_input=Z`
(the standard deviation of the children's shift over the groups, in percent).
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from supernet.config import compose_config, space_from_config
from supernet.latency import Measurer, MeasureSettings
from supernet.latency.reference import smallest_child_plan
from supernet.latency.space_io import restrict_resolutions
from supernet.models.static import build_child
from supernet.space import LayerSpec, SearchSpace

REFERENCES = ("fixed_network", "smallest_child", "smallest_child_half_input")


def paired_measurer(kind: str, space: SearchSpace, threads: int) -> Measurer:
    settings = MeasureSettings(target="cpu", threads=threads, channels_last=True, repeats=60, warmup=10,
                               rounds=4, statistic="min", sweeps=1, paired=True,
                               reference="fixed_network" if kind == "fixed_network" else "smallest_child")
    measurer = Measurer(settings)
    measurer.unit_ms = 1.0  # plain ratios: every measurer counts in its own reference
    plan = smallest_child_plan(space)
    if kind == "smallest_child_half_input":
        # the same child's modules with half the input: one private reference case, set before any timing
        measurer._reference = measurer.case(build_child(plan), plan[0].cin, plan[0].resolution // 2)
    else:
        measurer.pair_with(plan)
    return measurer


def shift_std_pct(values: list[list[float]]) -> tuple[float, float]:
    """(std of the per-group mean log-deviation, std of what remains per child), both in percent."""
    logs = np.log(np.asarray(values))
    deviation = logs - np.median(logs, axis=0)
    shift = deviation.mean(axis=1)
    return float(shift.std() * 100), float((deviation - shift[:, None]).std() * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="small")
    parser.add_argument("--resolutions", type=int, nargs="*")
    parser.add_argument("--groups", type=int, default=12, help="timings of the 8 children per reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    space = restrict_resolutions(space_from_config(compose_config("lut", [f"space={args.space}"])),
                                 args.resolutions)
    rng = random.Random(args.seed)
    plans = [space.layers(space.sample(rng)) for _ in range(8)]
    blocks: list[LayerSpec] = [layer for plan in plans[:2] for layer in plan][:16]
    measurers = {kind: paired_measurer(kind, space, args.threads) for kind in REFERENCES}
    children: dict[str, list[list[float]]] = {kind: [] for kind in REFERENCES}
    layers: dict[str, list[list[float]]] = {kind: [] for kind in REFERENCES}
    for measurer in measurers.values():
        with measurer:
            measurer.time_children(plans)  # the settling pass, and the reference's first calls
    for group in range(args.groups):
        for kind, measurer in measurers.items():
            with measurer:
                children[kind].append(measurer.time_children(plans))
                layers[kind].append(measurer.time_layers(blocks))
        print(f"group {group + 1}/{args.groups}", flush=True)
    shifts = {}
    for kind in REFERENCES:
        shift, rest = shift_std_pct(children[kind])
        block_shift, _ = shift_std_pct(layers[kind])
        reference_ms = measurers[kind].reference_ms()
        shifts[kind] = shift
        print(f"{kind:26s} reference {reference_ms:.3f} ms; children's shift {shift:.2f} %, per child beyond "
              f"it {rest:.2f} %; blocks' shift {block_shift:.2f} %", flush=True)
    print("reference shift_pct " + " ".join(f"{kind}={shifts[kind]:.2f}" for kind in REFERENCES))


if __name__ == "__main__":
    main()
