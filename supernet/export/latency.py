"""Latency figures for the card, from `supernet.latency` when it is installed alongside.

Both figures are optional: a predicted latency needs a lookup table (the search's Pareto entry or
--lut FILE), a measured one needs the target device to be present where the export runs.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from supernet.export.errors import ExportError
from supernet.space import Arch


def target_present(target: str) -> bool:
    return target == "cpu" or (target == "gpu" and torch.cuda.is_available())


def predict_from_lut(lut: Path, arch: Arch) -> float:
    try:
        from supernet.latency import LatencyTable
    except ImportError as err:
        raise ExportError(f"--lut {lut}: latency tables need supernet.latency, which cannot be imported "
                          f"({err})") from err
    if not Path(lut).is_file():
        raise ExportError(f"--lut {lut}: no such file (make one with `supernet lut build`)")
    return float(LatencyTable.load(lut).predict(arch))


def device_name(target: str) -> str:
    if target == "gpu":
        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


STOPWATCH = "stopwatch: median of 60 calls after 10 warm-up calls, batch 1, 2 threads, channels_last"


def measure(model: nn.Module, resolution: int, target: str, in_channels: int,
            lut: str | Path | None = None) -> tuple[float | None, str | None]:
    """End-to-end latency of `model` on `target` in ms, and how it was measured; (None, None) where it
    cannot be measured here.

    With the latency table the prediction came from, built on this very device, the model is timed as
    that table was timed (its repeats, statistic, memory format; paired timing counted in the table's
    unit), so the measured figure compares with the predicted one like with like. Otherwise it is timed
    with `measure_child_latency`'s defaults, and the card says which.
    """
    if not target_present(target):
        return None, None
    try:
        from supernet.latency import measure_child_latency
        from supernet.latency.validate import measurer_for
    except ImportError:
        return None, None
    # A copy: the measurement may move the model to the GPU or change its memory format.
    model = copy.deepcopy(model).eval()
    table, problem = _table_timed_here(lut, target)
    if table is None:
        ms = measure_child_latency(model, resolution, target, in_channels=in_channels)
        return float(ms), f"{STOPWATCH} (not as a latency table was timed: {problem})"
    with measurer_for(table) as measurer:
        ms = measurer.time_cases([measurer.case(model, in_channels, resolution)])[0]
    paired = ", paired, counted in its unit" if table.measure.get("paired") else ""
    return float(ms), f"as latency table {lut} was timed{paired}"


def _table_timed_here(lut: str | Path | None, target: str) -> tuple[Any, str | None]:
    """The table at `lut` if this machine can time as it was timed, else None and why not."""
    from supernet.latency import LatencyTable, LatencyTableError
    from supernet.latency.validate import why_not_measurable_here

    if lut is None:
        return None, "none was given"
    try:
        table = LatencyTable.load(lut)
    except LatencyTableError as err:
        return None, str(err)
    if table.fingerprint.get("target") != target:
        return None, f"{lut} is a {table.fingerprint.get('target')} table, the target is {target}"
    problem = why_not_measurable_here(table)
    return (table, None) if problem is None else (None, problem)
