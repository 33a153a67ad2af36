"""Build a latency table in a runtime, validate it on fresh children, and compare with a torch-eager table.

    flock /tmp/supernet-bench.lock .venv/bin/python scripts/bench_lut.py --runtime onnxruntime
    flock /tmp/supernet-bench.lock .venv/bin/python scripts/bench_lut.py --runtime onnxruntime --paired true

The fresh children are exported as `supernet export` exports them and timed in the table's runtime
(`supernet lut validate`'s path). Beside the table's own error, the script builds a torch-eager table of
the same space and reports how its predictions rank the same measured times (Kendall tau).

Last line: `lut runtime=R mape=X within5=Y within10=Z kendall=T build_s=S predict_per_s=P` (mape, within5,
within10 in percent over the fresh children; build_s the wall time of the whole build, exports included;
predict_per_s: uncached `LatencyTable.predict` calls).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from supernet.config import compose_config, space_from_config
from supernet.latency import (
    LatencyTable,
    Measurer,
    build_table,
    error_report,
    kendall_tau,
    latency_config,
    measurer_for,
    partial_path,
    validate_table,
)
from supernet.space import Arch, SearchSpace


def load_avg() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def build(space: SearchSpace, runtime: str, out: Path, graph_dir: Path | None, args: argparse.Namespace,
          repeats: int | None = None, sweeps: int | None = None) -> tuple[LatencyTable, float]:
    cfg = latency_config(runtime=runtime, threads=args.threads, paired=args.paired == "true",
                         repeats=repeats or args.repeats, sweeps=sweeps or args.sweeps)
    out.unlink(missing_ok=True)
    partial_path(out).unlink(missing_ok=True)  # time a full build, not a resumed one
    print(f"[{runtime}] building, load {load_avg()}", flush=True)
    start = time.perf_counter()
    with Measurer(cfg, graph_dir=graph_dir) as measurer:
        table = build_table(space, measurer, out)
    build_s = time.perf_counter() - start
    held = table.fit_report["held_out"]
    print(f"[{runtime}] {len(table.entries)} blocks in {build_s:.1f} s (export "
          f"{table.meta['export_s']:.1f} s); fit {table.fit}; held-out {_fmt(held)}; load {load_avg()}",
          flush=True)
    return table, build_s


def predict_rate(table: LatencyTable, n: int = 3000) -> float:
    rng = random.Random(7)
    archs = [table.space.sample(rng) for _ in range(n)]
    table._plans.clear()
    start = time.perf_counter()
    for arch in archs:
        table.predict(arch)
    return n / (time.perf_counter() - start)


def _fmt(r: dict[str, float]) -> str:
    return (f"MAPE {r['mape_pct']:.2f} %, within ±5 % {r['within5_pct']:.0f} %, within ±10 % "
            f"{r['within10_pct']:.0f} %, tau {r['kendall_tau']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--space", default="small")
    parser.add_argument("--children", type=int, default=50, help="fresh children to validate on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paired", default="false", choices=("true", "false"))
    parser.add_argument("--repeats", type=int, default=None, help="default: the schema's")
    parser.add_argument("--sweeps", type=int, default=None, help="default: the schema's")
    parser.add_argument("--compare-torch", default="true", choices=("true", "false"),
                        help="also build a torch-eager table and rank the same measured times with it")
    parser.add_argument("--torch-repeats", type=int, default=None,
                        help="the eager table's repeats (default: as the table's); eager timing is slow "
                             "on a busy machine")
    parser.add_argument("--torch-sweeps", type=int, default=None, help="the eager table's sweeps")
    parser.add_argument("--graph-dir", default=None,
                        help="keep exported graphs here across runs (default: a fresh folder, so build_s "
                             "includes every export); an empty folder the first time, to time the exports")
    parser.add_argument("--out-dir", default="outputs/bench_lut")
    args = parser.parse_args()

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    space = space_from_config(compose_config("lut", [f"space={args.space}"]))
    with tempfile.TemporaryDirectory(prefix="bench-lut-graphs-") as fresh:
        graph_dir = Path(args.graph_dir) if args.graph_dir else Path(fresh)
        table, build_s = build(space, args.runtime, out_dir / f"{args.runtime}.json", graph_dir, args)
        print(f"[{args.runtime}] validating on {args.children} fresh children; load {load_avg()}", flush=True)
        start = time.perf_counter()
        with measurer_for(table) as measurer:
            measurer.graph_dir = graph_dir
            report = validate_table(table, measurer, children=args.children, seed=1)
        print(f"[{args.runtime}] validated in {time.perf_counter() - start:.1f} s: "
              f"{_fmt(report['predicted'])}; raw sum {_fmt(report['raw_sum'])}; load {load_avg()}",
              flush=True)
    result = {"runtime": args.runtime, "space": args.space, "build_s": build_s, "validation": report,
              "fit": table.fit_report, "loadavg_end": load_avg()}
    result_path = out_dir / f"result-{args.runtime}.json"
    result_path.write_text(json.dumps(result, indent=1) + "\n")  # kept should the comparison be stopped
    measured = [c["measured_ms"] for c in report["children"]]
    if args.compare_torch == "true" and args.runtime != "torch":
        eager, eager_build_s = build(space, "torch", out_dir / "torch.json", None, args,
                                     repeats=args.torch_repeats, sweeps=args.torch_sweeps)
        eager_pred = [eager.predict(Arch.parse(c["arch"])) for c in report["children"]]
        tau = kendall_tau(eager_pred, measured)
        print(f"[torch] the eager table ranks the {args.runtime} times of the same children with tau "
              f"{tau:.3f} (the {args.runtime} table: {report['predicted']['kendall_tau']:.3f}); eager "
              f"predicts {sum(eager_pred) / sum(measured):.1f}x their time; load {load_avg()}", flush=True)
        result["torch_table"] = {"build_s": eager_build_s, "kendall_vs_measured": tau,
                                 "vs_measured": error_report(eager_pred, measured)}
    rate = predict_rate(table)
    result_path.write_text(json.dumps(result, indent=1) + "\n")
    p = report["predicted"]
    print(f"lut runtime={args.runtime} mape={p['mape_pct']:.2f} within5={p['within5_pct']:.1f} "
          f"within10={p['within10_pct']:.1f} kendall={p['kendall_tau']:.3f} build_s={build_s:.1f} "
          f"predict_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
