"""`search_devices`: one search per device, device after device, on one evaluator and the run's shared
accuracy store, then one summary (devices.json, a table) and one plot with every device's front."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from supernet.run.files import atomic_write_bytes, atomic_write_text
from supernet.search.devices import Device
from supernet.search.engine import open_store, run_search
from supernet.search.evaluator import AccuracyEvaluator
from supernet.search.result import GenerationStats, SearchResult
from supernet.search.settings import SearchSettings


def search_devices(run_dir: str | Path, devices: Sequence[Device], settings: SearchSettings, *,
                   evaluator=None, restart: bool = False, console: Console | None = None,
                   on_generation: Callable[[str, GenerationStats], None] | None = None
                   ) -> list[SearchResult]:
    """Search each device in turn into RUN_DIR/search/<device>/ (out_dir/<device>/; a single device:
    out_dir itself), then, for several, write the overview beside them. Children met by an earlier device
    cost nothing later."""
    console = console or Console()
    run_dir = Path(run_dir)
    base = Path(settings.out_dir) if settings.out_dir else run_dir / "search"
    several = len(devices) > 1
    results = []
    with ExitStack() as owned:
        if evaluator is None:  # then its worker processes stop once every device is searched
            evaluator = owned.enter_context(AccuracyEvaluator.from_run(run_dir, settings.evaluation))
        store = open_store(run_dir, settings, evaluator)
        for device in devices:
            console.print(f"[bold]device {device.name}[/] ({_describe(device)})", highlight=False)
            folder = base / device.name if several or not settings.out_dir else base
            per_device = replace(settings, out_dir=str(folder))
            callback = (lambda stats, name=device.name: on_generation(name, stats)) if on_generation else None
            results.append(run_search(run_dir, None, per_device, device=device, evaluator=evaluator,
                                      store=store, restart=restart, console=console, on_generation=callback))
    if several:
        write_overview(results, base)
    return results


def _describe(device: Device) -> str:
    path = getattr(device.table, "path", None)
    runtime = f", runtime {device.runtime}" if device.runtime else ""
    return f"{device.target}{runtime}, table {path}" if path else f"{device.target}{runtime}"


def overview_document(results: Sequence[SearchResult]) -> dict:
    return {"devices": [{
        "device": r.device, "target": r.target, "runtime": r.runtime,
        "lut": str(getattr(r.table, "path", None) or "") or None, "pareto": str(r.out_dir / "pareto.json"),
        "front_size": len(r.front), "hypervolume": r.hypervolume, "candidates": len(r.candidates),
        "evaluations_this_call": r.evaluations_now, "full_evaluations_this_call": r.promotions_now,
        "wall_s": r.wall_s,
        "fastest_ms": min((e.candidate.measures.latency_ms for e in r.front), default=None),
        "best_accuracy": max((e.candidate.accuracy for e in r.front), default=None),
    } for r in results]}


def write_overview(results: Sequence[SearchResult], directory: Path) -> None:
    """devices.json and fronts.png in `directory`: every device's front side by side."""
    atomic_write_text(directory / "devices.json", json.dumps(overview_document(results), indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    for r in results:
        xs = [e.candidate.measures.latency_ms for e in r.front]
        ys = [100 * e.candidate.accuracy for e in r.front]
        ax.plot(xs, ys, "-o", markersize=4, label=f"{r.device} ({len(r.front)}, hv {r.hypervolume:.4f})")
    ax.set_xlabel("predicted latency on each device (ms)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Pareto front per device (accuracies shared)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(directory / "fronts.png", lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def devices_table(results: Sequence[SearchResult]) -> Table:
    table = Table(title="Pareto front per device")
    for column in ("device", "front", "hv", "best acc %", "fastest ms", "evaluated now", "on all images",
                   "seconds"):
        table.add_column(column, justify="left" if column == "device" else "right")
    for r in results:
        best = max((e.candidate.accuracy for e in r.front), default=float("nan"))
        fastest = min((e.candidate.measures.latency_ms for e in r.front), default=float("nan"))
        table.add_row(r.device, str(len(r.front)), f"{r.hypervolume:.4f}", f"{100 * best:.2f}",
                      f"{fastest:.3f}", str(r.evaluations_now), str(r.promotions_now), f"{r.wall_s:.0f}")
    return table
