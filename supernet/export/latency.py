"""Latency figures for the card, from `supernet.latency` when it is installed alongside.

Both figures are optional: a predicted latency needs a lookup table (the search's Pareto entry or
--lut FILE), a measured one needs the target device to be present where the export runs.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path

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


def measure(model: nn.Module, resolution: int, target: str) -> float | None:
    """End-to-end latency of `model` on `target` in ms, or None where it cannot be measured here.

    `measure_child_latency`'s defaults are the latency tables' own (batch 1, median of repeats), so the
    figure compares with a predicted one from a table built with default settings.
    """
    if not target_present(target):
        return None
    try:
        from supernet.latency import measure_child_latency
    except ImportError:
        return None
    # A copy: the measurement may move the model to the GPU or change its memory format.
    return float(measure_child_latency(copy.deepcopy(model).eval(), resolution, target))
