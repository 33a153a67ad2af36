"""Build a CPU latency table for a space, validate it on fresh children, report its error and speed.

    .venv/bin/python scripts/bench_lut.py                       # space small, threads 2, batch 1, float32
    .venv/bin/python scripts/bench_lut.py --ofa-resolution 160  # also ofa_mbv3 at one resolution first
    .venv/bin/python scripts/bench_lut.py --space ofa_mbv3 --resolutions 128

Last line: `lut mape=X within5=Y within10=Z kendall=T build_s=S predict_per_s=P` for the default space
(mape, within5, within10 in percent over the validation children; build_s the wall time of the whole
build: every block plus the calibration children; predict_per_s: uncached `LatencyTable.predict` calls).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from supernet.config import compose_config, space_from_config
from supernet.latency import (
    CalibrationPlan,
    LatencyTable,
    Measurer,
    MeasureSettings,
    build_table,
    validate_table,
)
from supernet.latency.build import partial_path
from supernet.latency.space_io import restrict_resolutions
from supernet.latency.validate import measurer_for
from supernet.space import SearchSpace


def load_avg() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def pick_memory_format(space: SearchSpace, args: argparse.Namespace) -> bool:
    """channels_last or contiguous, whichever runs the max + min child faster end to end (interleaved)."""
    if args.channels_last != "auto":
        return args.channels_last == "true"
    plans = [space.layers(space.max()), space.layers(space.min())]
    totals = {}
    for channels_last in (True, False):
        settings = MeasureSettings(target="cpu", threads=args.threads, channels_last=channels_last,
                                   repeats=args.repeats, warmup=args.warmup, statistic=args.statistic,
                                   sweeps=1)
        with Measurer(settings) as measurer:
            totals[channels_last] = sum(measurer.time_children(plans))
    print(f"memory format: max+min child {totals[True]:.3f} ms channels_last, {totals[False]:.3f} ms "
          "contiguous", flush=True)
    return totals[True] <= totals[False]


def bench(space: SearchSpace, label: str, args: argparse.Namespace) -> dict[str, float]:
    channels_last = pick_memory_format(space, args)
    settings = MeasureSettings(target="cpu", threads=args.threads, batch_size=1, dtype="float32",
                               channels_last=channels_last, repeats=args.repeats, warmup=args.warmup,
                               rounds=args.rounds, sweeps=args.sweeps, statistic=args.statistic,
                               paired=args.paired == "true", reference=args.reference)
    out = Path(args.out_dir) / f"{label}.json"
    out.unlink(missing_ok=True)
    partial_path(out).unlink(missing_ok=True)  # time a full build, not a resumed one
    print(f"[{label}] building: {'channels_last' if channels_last else 'contiguous'}, {settings}; "
          f"load {load_avg()}", flush=True)
    start = time.perf_counter()
    with Measurer(settings) as measurer:
        table = build_table(space, measurer, out, CalibrationPlan(children=args.children, seed=0))
        build_s = time.perf_counter() - start
        report = table.calibration_report
        scores = {k: round(v, 2) for k, v in report["candidates_loo_mape_pct"].items()}
        print(f"[{label}] {len(table.entries)} blocks in {build_s:.1f} s; calibration {table.calibration}; "
              f"leave-one-out MAPE % {scores}", flush=True)
        print(f"[{label}] calibration held-out: {_fmt(report['held_out'])}; "
              f"raw sum {_fmt(report['held_out_raw_sum'])}", flush=True)
    print(f"[{label}] validating on {args.validate} fresh children; load {load_avg()}", flush=True)
    # a measurer of its own, as `supernet lut validate` makes one: nothing carries over from the build but
    # what the file holds
    with measurer_for(LatencyTable.load(out)) as measurer:
        result = validate_table(table, measurer, children=args.validate, seed=args.validate_seed)
    out.with_suffix(".validation.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"[{label}] validation raw sum:   {_fmt(result['raw_sum'])}")
    print(f"[{label}] validation calibrated: {_fmt(result['calibrated'])}; load {load_avg()}", flush=True)
    drift = result["drift"]
    if drift is not None:
        # A diagnostic beside the figures, not instead of them: the last line keeps the drift in.
        print(f"[{label}] device drift since the build {drift['pct']:+.2f} % ({drift['anchors']} calibration "
              f"children timed again); without it: {_fmt(drift['calibrated_without_drift'])}", flush=True)
    speed = result["device_speed"]
    if speed is not None:
        print(f"[{label}] reference network {speed['reference_ms_now']:.4f} ms now, "
              f"{speed['reference_ms_table']:.4f} ms in the table ({speed['pct']:+.2f} %); "
              "in ms of this moment: "
              f"{_fmt(speed['calibrated_at_current_speed'])}", flush=True)
    if result["repeatability"] is not None:
        print(f"[{label}] repeatability, odd sweeps against even sweeps of the same children: "
              f"{_fmt(result['repeatability'])}", flush=True)
    return {**result["calibrated"], "build_s": build_s, "predict_per_s": predict_rate(out, space)}


def predict_rate(path: Path, space: SearchSpace, n: int = 5000) -> float:
    """Predictions per second on fresh archs with an empty cache (the search mostly sees new children)."""
    table = LatencyTable.load(path)
    rng = random.Random(123)
    archs = [space.sample(rng) for _ in range(n)]
    start = time.perf_counter()
    for arch in archs:
        table.predict(arch)
    return n / (time.perf_counter() - start)


def _fmt(r: dict[str, float]) -> str:
    return (f"n={r['n']} mape={r['mape_pct']:.2f}% within5={r['within5_pct']:.1f}% "
            f"within10={r['within10_pct']:.1f}% max={r['max_error_pct']:.1f}% kendall={r['kendall_tau']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="small")
    parser.add_argument("--resolutions", type=int, nargs="*", help="restrict --space to these resolutions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sweeps", type=int, default=4)
    parser.add_argument("--statistic", default="min",
                        help="median | min | p<NN>; min by default: on a CPU shared with other work most "
                             "samples of a 2-thread op are delayed, and the median follows the load")
    parser.add_argument("--paired", choices=("true", "false"), default="true",
                        help="time every call right after one of the reference network and keep the ratio")
    parser.add_argument("--reference", choices=("smallest_child", "fixed_network"), default="smallest_child",
                        help="what paired timing calls: the space's smallest child, or one fixed network")
    parser.add_argument("--channels-last", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--children", type=int, default=40, help="random calibration children")
    parser.add_argument("--validate", type=int, default=50, help="fresh children to validate on")
    parser.add_argument("--validate-seed", type=int, default=1)
    parser.add_argument("--ofa-resolution", type=int, default=0,
                        help="also bench ofa_mbv3 at this resolution (0: skip)")
    parser.add_argument("--out-dir", default="luts/bench")
    args = parser.parse_args()

    if args.ofa_resolution:
        ofa = restrict_resolutions(space_from_config(compose_config("lut", ["space=ofa_mbv3"])),
                                   [args.ofa_resolution])
        r = bench(ofa, f"ofa_mbv3-r{args.ofa_resolution}", args)
        print(f"lut[ofa_mbv3@{args.ofa_resolution}] mape={r['mape_pct']:.2f} within5={r['within5_pct']:.1f} "
              f"within10={r['within10_pct']:.1f} kendall={r['kendall_tau']:.3f} build_s={r['build_s']:.1f} "
              f"predict_per_s={r['predict_per_s']:.0f}", flush=True)
    space = restrict_resolutions(space_from_config(compose_config("lut", [f"space={args.space}"])),
                                 args.resolutions)
    label = args.space + "".join(f"-r{r}" for r in args.resolutions or [])
    r = bench(space, label, args)
    print(f"lut mape={r['mape_pct']:.2f} within5={r['within5_pct']:.1f} within10={r['within10_pct']:.1f} "
          f"kendall={r['kendall_tau']:.3f} build_s={r['build_s']:.1f} predict_per_s={r['predict_per_s']:.0f}")


if __name__ == "__main__":
    main()
