"""What a search leaves behind: pareto.json (read by `supernet export`), summary.json, pareto.png, a table."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from rich.table import Table

from supernet.run.files import atomic_write_bytes, atomic_write_text
from supernet.search.result import SearchResult
from supernet.search.settings import CONSTRAINTS


def pareto_document(result: SearchResult) -> dict[str, Any]:
    """pareto.json: the front sorted by predicted latency, fastest first, in the shape the export reads."""
    limits = result.settings.limits
    extra = [name for name in ("memory_bytes",)
             if name in result.settings.objectives or "max_memory_bytes" in limits]
    front = []
    for entry in result.front:
        c = entry.candidate
        row = {"arch": str(c.arch), "arch_json": c.arch.to_json(), "accuracy": c.accuracy,
               "latency_ms": c.measures.latency_ms, "latency_ms_measured": entry.latency_ms_measured,
               "params": c.measures.params, "flops": c.measures.flops,
               "violates_measured": entry.violates_measured}
        row.update({name: int(c.measures.get(name)) for name in extra})
        front.append(row)
    return {"device": result.device, "target": result.target, "runtime": result.runtime,
            "lut": _lut_path(result.table),
            "objectives": list(result.settings.objectives),
            "constraints": {key: limits.get(key) for key in CONSTRAINTS}, "seed": result.settings.seed,
            "front": front}


def summary_document(result: SearchResult) -> dict[str, Any]:
    """summary.json: how the search went (evaluations, hypervolume, predicted vs measured latency)."""
    last = result.generations[-1] if result.generations else None
    return _finite({
        "device": result.device,
        "target": result.target,
        "runtime": result.runtime,
        "candidates": len(result.candidates),
        "evaluations_this_call": result.evaluations_now,
        "full_evaluations_this_call": result.promotions_now,
        "generations_completed": last.generation if last else None,
        "stopped_early": bool(last and last.generation < result.settings.generations),  # its front stalled
        "seeded_from_store": result.seeded,
        "resumed_from_generation": result.resumed_from,
        "prefix_error": {"children": len(result.prefix_errors),  # counted on the prefix and on all images
                         "mean": statistics.fmean(result.prefix_errors) if result.prefix_errors else None},
        "front_size": len(result.front),
        "hypervolume": result.hypervolume,
        "hypervolume_reference": {"accuracy": 0.0, "latency_ms": result.latency_ref_ms},
        "latency_measurement": {"note": result.measurement.note, "report": result.measurement.report},
        "extremes": {name: {"arch": str(c.arch), "accuracy": c.accuracy, "latency_ms": c.measures.latency_ms}
                     for name, c in result.extremes.items()},
        "wall_s": result.wall_s,
        "generations": [{"generation": g.generation, "evaluated": g.evaluated, "promoted": g.promoted,
                         "skipped": g.skipped, "hypervolume": g.hypervolume, "surrogate_tau": g.predictor_tau}
                        for g in result.generations],
    })


def write_outputs(result: SearchResult) -> list[Path]:
    out = result.out_dir
    atomic_write_text(out / "pareto.json", json.dumps(pareto_document(result), indent=1) + "\n")
    atomic_write_text(out / "summary.json", json.dumps(summary_document(result), indent=1) + "\n")
    plot_front(result, out / "pareto.png")
    return [out / "pareto.json", out / "summary.json", out / "pareto.png", out / "candidates.jsonl"]


def plot_front(result: SearchResult, path: Path) -> None:
    """Accuracy against predicted latency: every candidate faint, the initial random samples, max and min
    children marked, the front highlighted and joined, and measured latencies of the front where taken."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    everyone = result.candidates
    ax.scatter([c.measures.latency_ms for c in everyone], [100 * c.accuracy for c in everyone], s=12,
               color="0.8", label=f"evaluated ({len(everyone)})", zorder=1)
    extremes = {c.arch for c in result.extremes.values()}
    randoms = [c for c in everyone if c.generation == 0 and c.arch not in extremes]
    ax.scatter([c.measures.latency_ms for c in randoms], [100 * c.accuracy for c in randoms], s=18,
               marker="x", color="tab:blue", label="initial random samples (spread over latency)", zorder=2)
    front = result.front
    xs = [e.candidate.measures.latency_ms for e in front]
    ys = [100 * e.candidate.accuracy for e in front]
    ax.plot(xs, ys, "-o", color="tab:red", markersize=5, label=f"Pareto front ({len(front)})", zorder=3)
    measured = [(e.latency_ms_measured, 100 * e.candidate.accuracy) for e in front
                if e.latency_ms_measured is not None]
    if measured:
        ax.scatter(*zip(*measured, strict=True), s=28, facecolors="none", edgecolors="tab:red",
                   label="front, measured latency", zorder=3)
    for name, c in result.extremes.items():
        ax.scatter([c.measures.latency_ms], [100 * c.accuracy], s=120, marker="*", color="black", zorder=4)
        ax.annotate(f"{name} child", (c.measures.latency_ms, 100 * c.accuracy), textcoords="offset points",
                    xytext=(6, -10))
    limit = result.settings.limits.get("max_latency_ms")
    if limit is not None:
        ax.axvline(limit, color="0.4", linestyle="--", linewidth=1, label=f"max latency {limit:g} ms")
    ax.set_xlabel(f"predicted latency on {result.device or result.target} (ms)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"search on {result.device or result.target}: hypervolume {result.hypervolume:.4f}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def front_table(result: SearchResult) -> Table:
    limit = result.settings.limits.get("max_latency_ms")
    title = (f"Pareto front on {result.device or result.target}: {len(result.front)} of "
             f"{len(result.candidates)} known children, hypervolume {result.hypervolume:.4f}")
    table = Table(title=title)
    for column in ("#", "acc %", "latency ms", "measured ms", "error %", "params (M)", "FLOPs (M)", "arch"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for i, entry in enumerate(result.front):
        c, measured = entry.candidate, entry.latency_ms_measured
        error = "" if measured is None else f"{100 * (c.measures.latency_ms - measured) / measured:+.1f}"
        flag = " [bold red]over limit[/]" if entry.violates_measured else ""
        table.add_row(str(i), f"{100 * c.accuracy:.2f}", f"{c.measures.latency_ms:.3f}",
                      "-" if measured is None else f"{measured:.3f}{flag}", error,
                      f"{c.measures.params / 1e6:.3f}", f"{c.measures.flops / 1e6:.2f}", str(c.arch))
    if limit is not None:
        table.caption = f"max latency {limit:g} ms (predicted); measured children over it are flagged"
    return table


def _lut_path(table: Any) -> str | None:
    path = getattr(table, "path", None)
    return str(path) if path is not None else None


def _finite(value: Any) -> Any:
    """JSON has no NaN: undefined figures (a rank correlation of one child, say) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
