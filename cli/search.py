"""`supernet search RUN_DIR --target cpu|gpu`: compose the search config, search, print the front."""

from __future__ import annotations

from pathlib import Path

import typer

from supernet.config import compose_config
from supernet_cli.common import console, err_console, user_errors


@user_errors
def search(
    run_dir: Path = typer.Argument(..., help="a run directory written by `supernet train`"),
    overrides: list[str] = typer.Argument(None, help="key=value overrides of configs/search.yaml, e.g. "
                                                     "population=24 generations=5 objectives=[accuracy,"
                                                     "latency_ms,params]"),
    target: str = typer.Option(..., "--target", help="the device to search for: cpu | gpu"),
    lut: Path = typer.Option(None, "--lut", help="latency table built on the target by `supernet lut build` "
                                                 "(default: the table cached for this device, else built)"),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                         help="hard limit on predicted latency (constraints.max_latency_ms)"),
    restart: bool = typer.Option(False, "--restart", help="discard an earlier search in the output folder "
                                                          "instead of resuming it"),
) -> None:
    """Evolve children of a trained supernet for accuracy against latency on a target (NSGA-II)."""
    from supernet.search import SearchSettings, front_table, run_search

    overrides = list(overrides or [])
    if max_latency_ms is not None:
        overrides.append(f"constraints.max_latency_ms={max_latency_ms}")
    settings = SearchSettings.from_config(compose_config("search", overrides))
    try:
        result = run_search(run_dir, target, settings, lut=lut, restart=restart, console=console)
    except KeyboardInterrupt:
        err_console.print("interrupted; every evaluated child is kept: run the same command to resume")
        raise
    console.print(front_table(result))
    if result.measurement.note:
        console.print(f"latency: {result.measurement.note}", highlight=False)
    elif result.measurement.report:
        r = result.measurement.report
        console.print(f"predicted vs measured latency of the front: MAPE {r['mape_pct']:.1f} %, "
                      f"{r['within10_pct']:.0f} % within ±10 %", highlight=False)
    flagged = sum(e.violates_measured for e in result.front)
    if flagged:
        console.print(f"[bold red]{flagged} front children exceed --max-latency-ms when measured[/]")
    console.print(f"{len(result.candidates)} children evaluated ({result.evaluations_now} now) in "
                  f"{result.wall_s:.1f} s; wrote {result.out_dir}/pareto.json, candidates.jsonl, pareto.png",
                  highlight=False)
