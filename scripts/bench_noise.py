"""The machine's noise as the latency tables see it: repeatability and drift, timed plain and paired.

    flock /tmp/supernet-bench.lock .venv/bin/python scripts/bench_noise.py --runtime onnxruntime
    flock /tmp/supernet-bench.lock .venv/bin/python scripts/bench_noise.py --runtime torch --groups 12

The same random children of the space are timed again and again, in groups that alternate between plain
timing and paired timing (each call right after the space's smallest child, the ratio kept and counted
in the reference's median latency over the run), so both modes meet the same phases of the machine.
Per mode:
- repeatability: each child's values in the odd groups (median) against the even ones: MAPE and Kendall
  tau, the device's agreement with itself, the ceiling for any table's agreement with it;
- spread: each child's coefficient of variation over the groups, median over the children (percent);
- drift: the children's median ratio of their last two groups to their first two (percent).

Last line: `noise runtime=R plain_cv=X paired_cv=Y plain_repeat_mape=A paired_repeat_mape=B
plain_drift=C paired_drift=D`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from supernet.config import compose_config, space_from_config
from supernet.latency import Measurer, error_report, latency_config


def load_avg() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--space", default="small")
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--groups", type=int, default=10, help="timings of every child per mode")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench_noise.json")
    args = parser.parse_args()

    space = space_from_config(compose_config("lut", [f"space={args.space}"]))
    rng = random.Random(3)
    randoms = [space.sample(rng) for _ in range(args.children)]
    archs = list(dict.fromkeys([space.max(), space.min(), *randoms]))
    plans = [space.layers(a) for a in archs]
    values: dict[str, list[list[float]]] = {"plain": [], "paired": []}
    reference: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-noise-graphs-") as graphs:
        measurers = {mode: Measurer(latency_config(runtime=args.runtime, threads=args.threads,
                                                   paired=mode == "paired"), graph_dir=Path(graphs))
                     for mode in values}
        measurers["paired"].pair_with(space.layers(space.min()))
        print(f"{len(archs)} children, {args.groups} groups per mode, {args.runtime}; load {load_avg()}",
              flush=True)
        for group in range(args.groups):
            for mode in ("plain", "paired") if group % 2 == 0 else ("paired", "plain"):
                with measurers[mode] as measurer:
                    values[mode].append(measurer.time_children(plans))
            paired = measurers["paired"]
            reference.extend(paired.reference_samples)
            paired.reference_samples.clear()
            print(f"group {group + 1}/{args.groups}; load {load_avg()}", flush=True)
    unit_ms = float(np.median(reference))
    summary: dict[str, dict[str, float]] = {}
    for mode, groups in values.items():
        v = np.asarray(groups) * (unit_ms if mode == "paired" else 1.0)  # (groups, children)
        odd, even = np.median(v[1::2], axis=0), np.median(v[0::2], axis=0)
        repeat = error_report(odd.tolist(), even.tolist())
        drift = float(np.median(v[-2:].mean(axis=0) / v[:2].mean(axis=0)) - 1.0) * 100.0
        cv = float(np.median(v.std(axis=0) / v.mean(axis=0))) * 100.0
        summary[mode] = {"cv_pct": cv, "repeat_mape_pct": repeat["mape_pct"],
                         "repeat_kendall": repeat["kendall_tau"], "drift_pct": drift}
        print(f"{mode}: spread {cv:.2f} %, odd vs even groups MAPE {repeat['mape_pct']:.2f} % tau "
              f"{repeat['kendall_tau']:.3f}, drift {drift:+.2f} %", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runtime": args.runtime, "archs": [str(a) for a in archs],
                                          "values": values, "reference_ms": unit_ms, "summary": summary,
                                          "loadavg_end": load_avg()}, indent=1) + "\n")
    p, q = summary["plain"], summary["paired"]
    print(f"noise runtime={args.runtime} plain_cv={p['cv_pct']:.2f} paired_cv={q['cv_pct']:.2f} "
          f"plain_repeat_mape={p['repeat_mape_pct']:.2f} paired_repeat_mape={q['repeat_mape_pct']:.2f} "
          f"plain_drift={p['drift_pct']:.2f} paired_drift={q['drift_pct']:.2f}")


if __name__ == "__main__":
    main()
