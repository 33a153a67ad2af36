"""`supernet lut build|validate|show`: latency lookup tables measured on the target device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from supernet_cli.common import console, err_console, user_errors

if TYPE_CHECKING:
    from supernet.latency import LatencyTable

lut_app = typer.Typer(help="Latency lookup tables: build on the target in its runtime, validate, show.",
                      no_args_is_help=True, pretty_exceptions_show_locals=False)


@lut_app.command("build")
@user_errors
def build(
    target: str = typer.Option(..., "--target", help="the device to measure on: cpu | gpu"),
    runtime: str = typer.Option(None, "--runtime",
                                help="what the deployed model runs in: onnxruntime (cpu default) | torch | "
                                     "tensorrt (gpu default); same as runtime=..."),
    out: Path = typer.Option(None, "--out",
                             help="table file (default: <cache_dir>/<fingerprint>-<space>.json)"),
    overrides: list[str] = typer.Argument(None, help="key=value overrides of configs/lut.yaml, e.g. "
                                                     "space=ofa_mbv3 resolutions=[160] threads=2"),
) -> None:
    """Measure every block configuration of a space in the target's runtime, fit, write the table."""
    from supernet.api import build_table

    try:
        table = build_table(target, overrides or [], out=out, runtime=runtime)
    except KeyboardInterrupt:
        err_console.print("progress saved beside the table (<table>.partial); run the same command to resume")
        raise
    path = table.path
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    _print_summary(table)


@lut_app.command("validate")
@user_errors
def validate(
    file: Path = typer.Argument(..., help="a table written by `supernet lut build`"),
    children: int = typer.Option(20, "--children", min=2, help="fresh random children to measure"),
    seed: int = typer.Option(1, "--seed", help="seed of the random children"),
    repeats: int = typer.Option(None, "--repeats", help="timed calls per child (default: the table's)"),
    sweeps: int = typer.Option(None, "--sweeps", min=1,
                               help="times each child is measured, far apart (default: the table's)"),
    as_json: bool = typer.Option(False, "--json", help="print only the full JSON report"),
) -> None:
    """Re-measure fresh children end to end in the table's runtime and compare with its prediction."""
    from supernet.latency import LatencyTable, measurer_for, validate_table

    table = LatencyTable.load(file)
    with measurer_for(table, repeats=repeats, sweeps=sweeps) as measurer:
        report = validate_table(table, measurer, children=children, seed=seed)
    if as_json:
        typer.echo(json.dumps(report))
        return
    rows = {"predicted (fitted)": report["predicted"], "raw block sum": report["raw_sum"]}
    console.print(_error_table(f"{file}: {children} fresh children in {table.runtime}", rows))
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "children"}))


@lut_app.command("show")
@user_errors
def show(
    file: Path = typer.Argument(..., help="a table written by `supernet lut build`"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Summarize a table: fingerprint, runtime, space, entries, fit error, predicted max/min child."""
    from supernet.latency import LatencyTable

    table = LatencyTable.load(file)
    if as_json:
        typer.echo(json.dumps(_summary(table)))
        return
    _print_summary(table)


def _summary(table: LatencyTable) -> dict[str, Any]:
    from supernet.latency import space_tag

    space = table.space
    return {
        "file": str(table.path),
        "fingerprint": table.fingerprint,
        "fingerprint_id": table.fingerprint_id,
        "space": space_tag(space),
        "resolutions": list(space.spec.resolutions),
        "entries": len(table.entries),
        "measure": table.measure,
        "fit": {**table.fit.to_json(), **{k: v for k, v in table.fit_report.items() if k != "children"}},
        "predicted_ms": {name: {"arch": str(arch), "predicted": table.predict(arch),
                                "raw_sum": table.predict_raw(arch)}
                         for name, arch in (("max", space.max()), ("min", space.min()))},
        "meta": table.meta,
    }


def _error_table(title: str, reports: dict[str, dict[str, float]]) -> Table:
    grid = Table(title=title)
    for column in ("prediction", "n", "MAPE %", "within ±5 %", "within ±10 %", "max error %", "Kendall tau"):
        grid.add_column(column)
    for name, r in reports.items():
        grid.add_row(name, str(r["n"]), f"{r['mape_pct']:.2f}", f"{r['within5_pct']:.1f} %",
                     f"{r['within10_pct']:.1f} %", f"{r['max_error_pct']:.1f}", f"{r['kendall_tau']:.3f}")
    return grid


def _print_summary(table: LatencyTable) -> None:
    from supernet.latency import describe

    s = _summary(table)
    console.print(f"[bold]{s['file']}[/]: {s['entries']} blocks of space {s['space']} at resolutions "
                  f"{s['resolutions']}", highlight=False, soft_wrap=True)
    how = ", ".join(f"{k}={v}" for k, v in table.measure.items())
    console.print(f"measured on {describe(table.fingerprint)} (id {s['fingerprint_id']}); {how}",
                  highlight=False, soft_wrap=True)
    fit = table.fit
    chosen_by = table.fit_report.get("chosen_by", "not fitted")
    offset = (f"offset by resolution {{{', '.join(f'{r}: {c:.4f}' for r, c in fit.offsets)}}}" if fit.offsets
              else f"{fit.c:.4f}")
    console.print(f"fit: {fit.form}: measured ≈ {fit.a:.4f} * sum + {fit.b:.4f} * layers + "
                  f"{offset} ms ({chosen_by})", highlight=False, soft_wrap=True)
    reports = {name: table.fit_report[key] for name, key in
               (("predicted (fitted)", "held_out"), ("raw block sum", "held_out_raw_sum"))
               if key in table.fit_report}
    if reports:
        console.print(_error_table("error on held-out children", reports))
    extremes = Table(title="predicted latency")
    for column in ("child", "predicted ms", "raw sum ms", "arch"):
        extremes.add_column(column)
    for name, row in s["predicted_ms"].items():
        extremes.add_row(name, f"{row['predicted']:.3f}", f"{row['raw_sum']:.3f}", row["arch"])
    console.print(extremes)
