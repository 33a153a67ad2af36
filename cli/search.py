"""`supernet search RUN_DIR --target cpu|gpu | --lut FILE... | --devices FILE`: a front per device."""

from __future__ import annotations

from pathlib import Path

import typer

from supernet_cli.common import console, err_console, user_errors


@user_errors
def search(
    run_dir: Path = typer.Argument(..., help="a run directory written by `supernet train`"),
    overrides: list[str] = typer.Argument(None, help="key=value overrides of configs/search.yaml, e.g. "
                                                     "population=24 generations=5 objectives=[accuracy,"
                                                     "latency_ms,params]"),
    target: str = typer.Option(None, "--target", help="the device to search for: cpu | gpu (its table is "
                                                      "the one cached for this machine, else built here)"),
    lut: list[Path] = typer.Option(None, "--lut", help="a latency table built on a device by `supernet lut "
                                                       "build`; repeat for one front per device"),
    devices: Path = typer.Option(None, "--devices", help="a devices file naming each device's table and "
                                                         "budgets (see configs/devices.yaml)"),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                         help="hard limit on predicted latency (constraints.max_latency_ms)"),
    restart: bool = typer.Option(False, "--restart", help="discard earlier searches in the output folders "
                                                          "instead of resuming them (accuracies are kept)"),
) -> None:
    """Evolve children of a trained supernet for accuracy against latency, one front per device."""
    from supernet.api import search_fronts
    from supernet.search import front_table
    from supernet.search.many import devices_table

    overrides = list(overrides or [])
    if max_latency_ms is not None:
        overrides.append(f"constraints.max_latency_ms={max_latency_ms}")
    if devices is not None and (lut or target):
        raise typer.BadParameter("give either --devices FILE or --target/--lut", param_hint="--devices")
    try:
        results = search_fronts(run_dir, overrides, target=target, luts=lut or [], devices=devices,
                                restart=restart, console=console)
    except KeyboardInterrupt:
        err_console.print("interrupted; every evaluated child is kept: run the same command to resume")
        raise
    for result in results:
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
        console.print(f"{result.device}: {len(result.candidates)} children known, {result.evaluations_now} "
                      f"evaluated now ({result.promotions_now} on every validation image) in "
                      f"{result.wall_s:.1f} s; wrote {result.out_dir}/pareto.json, candidates.jsonl, "
                      "pareto.png", highlight=False)
    if len(results) > 1:
        console.print(devices_table(results))
        console.print(f"wrote {results[0].out_dir.parent}/devices.json and fronts.png", highlight=False)
