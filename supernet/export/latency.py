"""Latency figures for the card: predicted by a latency table, measured from the exported file itself.

Both are optional: a predicted latency needs a table (the search's Pareto entry or --lut FILE), a
measured one needs the target device where the export runs. The measured figure times the written
`model.onnx` in the table's runtime with the table's settings where this machine can (so it compares
with the prediction like with like), else in the target's default runtime and settings; the card says which.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from supernet.export.errors import ExportError
from supernet.latency import (
    LatencyError,
    LatencyTable,
    Measurer,
    describe,
    latency_config,
    measurer_for,
    why_not_measurable_here,
)
from supernet.space import Arch


def predict_from_lut(lut: Path, arch: Arch) -> float:
    if not Path(lut).is_file():
        raise ExportError(f"--lut {lut}: no such file (make one with `supernet lut build`)")
    return float(LatencyTable.load(lut).predict(arch))


def measure(model: nn.Module, resolution: int, target: str, in_channels: int, lut: str | Path | None = None,
            onnx_file: Path | None = None) -> tuple[float | None, str | None]:
    """End-to-end latency of the exported child on `target` in ms, and how it was measured; (None, why)
    where it cannot be measured here.

    An ONNX runtime times `onnx_file` (the written model.onnx) or, where it was not written, the graph
    export writes for `model`; the torch runtime times `model`.
    """
    table, problem = _table_timed_here(lut, target)
    try:
        measurer = measurer_for(table) if table is not None else Measurer(latency_config(target=target))
    except LatencyError as err:
        return None, f"not measured: {err}"
    with measurer:
        timed_file = onnx_file is not None and measurer.runtime.takes_onnx
        if timed_file:
            ms = measurer.time_onnx_file(onnx_file, in_channels, resolution)
        else:
            ms = measurer.time_models([(model, in_channels, resolution)])[0]
        cfg, fingerprint = measurer.cfg, measurer.fingerprint()
    what = f"the written {Path(onnx_file).name}" if timed_file else f"the child in {cfg.resolved_runtime}"
    how = (f"{what} on {describe(fingerprint)}: {cfg.summary_statistic} of {cfg.repeats} calls after "
           f"{cfg.warmup} warm-up calls")
    if table is None:
        return float(ms), f"{how} (not as a latency table was timed: {problem})"
    paired = ", paired, counted in its unit" if cfg.paired else ""
    return float(ms), f"{how}, as latency table {lut} was timed{paired}"


def _table_timed_here(lut: str | Path | None, target: str) -> tuple[LatencyTable | None, str | None]:
    """The table at `lut` if this machine can time as it was timed, else None and why not."""
    if lut is None:
        return None, "none was given"
    try:
        table = LatencyTable.load(lut)
    except LatencyError as err:
        return None, str(err)
    if table.fingerprint.get("target") != target:
        return None, f"{lut} is a {table.fingerprint.get('target')} table, the target is {target}"
    problem = why_not_measurable_here(table)
    return (table, None) if problem is None else (None, problem)
