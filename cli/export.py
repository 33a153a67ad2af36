"""`supernet export` (a child as standalone, self-checked files) and `supernet eval` (their accuracy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from supernet_cli.common import console, user_errors

if TYPE_CHECKING:
    from supernet.export import EvalResult, ExportResult


@user_errors
def export(
    run_dir: Path = typer.Argument(..., help="run directory made by `supernet train`"),
    arch: str = typer.Option(None, "--arch", help="the child as an arch string, e.g. r28-w1:k3e4,k5e3-..."),
    pick: str = typer.Option(None, "--pick",
                             help="index into the search's Pareto front (0 = fastest) or 'best'"),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms",
                                         help="the most accurate front entry predicted at most this fast"),
    target: str = typer.Option(None, "--target", help="cpu | gpu: which search's front; also measures "
                                                      "latency on this device when it is present"),
    search_device: str = typer.Option(None, "--device", help="the searched device whose front --pick and "
                                                             "--max-latency-ms read (RUN_DIR/search/NAME)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: exports/<arch id>)"),
    formats: str = typer.Option(",".join(("safetensors", "pt2", "torchscript", "onnx")), "--formats",
                                help="comma-separated: safetensors, pt2, torchscript, onnx"),
    fold_bn: bool = typer.Option(False, "--fold-bn", help="fold batch norm into the preceding convolutions"),
    lut: Path = typer.Option(None, "--lut", help="latency table for the card's predicted latency"),
    search_dir: Path = typer.Option(None, "--search-dir", help="folder holding pareto.json "
                                                               "(default: RUN_DIR/search/<target>)"),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last"),
    device: str = typer.Option("cpu", "--compute-device", help="where BN recalibration and accuracy run: cpu "
                                                               "| cuda | auto (files are always written "
                                                               "from the CPU)"),
    as_json: bool = typer.Option(False, "--json", help="print the card as JSON instead of tables"),
) -> None:
    """Export one child: extract, recalibrate BN, write each format, load each back and check it."""
    from supernet.export import ExportRequest, export_child, parse_formats

    request = ExportRequest(run_dir=run_dir, arch=arch, pick=pick, max_latency_ms=max_latency_ms,
                            target=target, out=out, formats=parse_formats(formats), fold_bn=fold_bn, lut=lut,
                            search_dir=search_dir, checkpoint=checkpoint, device=device,
                            search_device=search_device)
    result = export_child(request)
    if as_json:
        console.print_json(json.dumps({"out": str(result.out_dir), "seconds": result.seconds,
                                       "timings": result.timings, **result.card}))
        return
    _print_export(result)


def _print_export(result: ExportResult) -> None:
    card = result.card
    table = Table(title=f"export {card['arch']} → {result.out_dir}")
    for column in ("format", "file", "size", "max abs diff", "status"):
        table.add_column(column, justify="right" if column in ("size", "max abs diff") else "left")
    for check in result.checks:
        table.add_row(check.format, check.file, _size(check.bytes), f"{check.max_abs_diff:.2e}",
                      "[green]ok[/]" if check.ok else "[red]FAIL[/]")
    console.print(table)
    acc = card["accuracy"]
    predicted, measured = card["latency_ms_predicted"], card["latency_ms_measured"]
    console.print(
        f"params {card['params'] / 1e6:.3f} M, FLOPs {card['flops'] / 1e6:.1f} M, "
        f"val top-1 {_pct(acc['val_top1'])}, test top-1 {_pct(acc['test_top1'])}, "
        f"latency predicted {_ms(predicted)} / measured {_ms(measured)}, "
        f"tolerance {card['verification']['tolerance']:.1e}"
        + (", BN folded" if card["bn_folded"] else "") + f", {result.seconds:.1f} s",
        highlight=False)


@user_errors
def evaluate(
    export_dir: Path = typer.Argument(..., help="folder made by `supernet export`"),
    split: str = typer.Option("test", "--split", help="test | val"),
    fmt: str = typer.Option(None, "--format", help="pt2 | torchscript | onnx | safetensors "
                                                   "(default: the first present, in that order)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Recompute an export's top-1 accuracy from its files and the data settings in its card."""
    from supernet.export import evaluate_export

    if split not in ("test", "val"):
        raise typer.BadParameter(f"{split!r} is not one of test, val", param_hint="--split")
    result = evaluate_export(export_dir, split, fmt)
    if as_json:
        console.print_json(json.dumps(result.to_json()))
        return
    _print_eval(result)


def _print_eval(result: EvalResult) -> None:
    recorded = "" if result.card_top1 is None else f" (card.json: {_pct(result.card_top1)})"
    console.print(f"{result.arch} [{result.format}] {result.split} top-1 {_pct(result.top1)} on "
                  f"{result.images} images{recorded}, {result.seconds:.1f} s", highlight=False)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} ms"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
