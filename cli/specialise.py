"""`supernet specialise RUN_DIR DEVICES_FILE`: export the chosen child of every (device, budget) pair.

For each device of the devices file and each of its `budgets_ms`, the most accurate child of that
device's front predicted within the budget is exported to OUT/<device>/<budget>ms/, and OUT/index.json
says what went where. Every pair is resolved before the first export, so a budget no child meets fails
at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from supernet_cli.common import console, user_errors


@user_errors
def specialise(
    run_dir: Path = typer.Argument(..., help="a run directory searched with `supernet search --devices`"),
    devices_file: Path = typer.Argument(..., help="the devices file the search used (with budgets_ms)"),
    out: Path = typer.Option(None, "--out", help="where the exports go (default: RUN_DIR/specialised)"),
    formats: str = typer.Option("safetensors,pt2,torchscript,onnx", "--formats",
                                help="comma-separated: safetensors, pt2, torchscript, onnx"),
    compute_device: str = typer.Option("cpu", "--compute-device", help="where BN recalibration and "
                                                                       "accuracy run: cpu | cuda | auto"),
) -> None:
    """Export one child per device and latency budget from each device's Pareto front, with an index."""
    from supernet.config import space_from_config
    from supernet.export import ExportRequest, export_child, parse_formats, select_arch
    from supernet.latency import latency_config
    from supernet.run.directory import read_run_config
    from supernet.run.files import atomic_write_text
    from supernet.search.devices import read_devices_file, resolve_devices
    from supernet.search.errors import SearchConfigError

    out = out or run_dir / "specialised"
    space = space_from_config(read_run_config(run_dir))
    entries = read_devices_file(devices_file)
    # Named devices need no table here; the others are named by theirs, as the search named them.
    names = [e.name for e in entries] if all(e.name for e in entries) else \
        [d.name for d in resolve_devices(space, entries, latency_config())]
    pairs = [(name, budget) for name, entry in zip(names, entries, strict=True)
             for budget in entry.budgets_ms]
    if not pairs:
        raise SearchConfigError(f"{devices_file} gives no budgets_ms: add e.g. `budgets_ms: [2.0]` to a "
                                "device")
    chosen = {pair: select_arch(space, run_dir, max_latency_ms=pair[1], device=pair[0]) for pair in pairs}
    index = []
    for (name, budget), selection in chosen.items():
        folder = out / name / f"{budget:g}ms"
        console.print(f"{name} within {budget:g} ms: {selection.arch} → {folder}", highlight=False)
        result = export_child(ExportRequest(run_dir=run_dir, arch=str(selection.arch), out=folder,
                                            formats=parse_formats(formats), device=compute_device))
        card = result.card
        index.append({"device": name, "budget_ms": budget, "arch": str(selection.arch),
                      "latency_ms_predicted": selection.predicted_latency_ms,
                      "val_top1": card["accuracy"]["val_top1"], "test_top1": card["accuracy"]["test_top1"],
                      "pareto": str(selection.pareto_path), "export": str(result.out_dir)})
    atomic_write_text(out / "index.json", json.dumps({"run_dir": str(run_dir), "exports": index}, indent=1)
                      + "\n")
    table = Table(title=f"specialised exports of {run_dir} ({len(index)})")
    for column in ("device", "budget ms", "predicted ms", "val top-1 %", "export"):
        table.add_column(column, justify="left" if column in ("device", "export") else "right")
    for row in index:
        table.add_row(row["device"], f"{row['budget_ms']:g}", f"{row['latency_ms_predicted']:.3f}",
                      f"{100 * row['val_top1']:.2f}", row["export"])
    console.print(table)
    console.print(f"wrote {out / 'index.json'}", highlight=False)
