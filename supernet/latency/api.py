"""What the search calls: a latency table for (space, target), loaded, found in the cache, or built here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supernet.latency.build import build_table
from supernet.latency.children import CalibrationPlan
from supernet.latency.fingerprint import current_fingerprint, fingerprint_id
from supernet.latency.measure import Measurer
from supernet.latency.settings import MeasureSettings
from supernet.latency.space_io import space_tag
from supernet.latency.table import LatencyTable
from supernet.space import SearchSpace


def cached_table_path(space: SearchSpace, settings: MeasureSettings, cache_dir: Path) -> Path:
    """cache_dir/<fingerprint-id>-<space name>-<space hash>.json for this device and these settings."""
    return Path(cache_dir) / f"{fingerprint_id(current_fingerprint(settings))}-{space_tag(space)}.json"


def get_table(space: SearchSpace, target: str, lut_path: str | Path | None = None,
              cache_dir: Path = Path("luts"), *, calibration: CalibrationPlan | None = None,
              progress: bool | None = None, **measure_opts: Any) -> LatencyTable:
    """The latency table to predict `space`'s children on `target` with.

    1. `lut_path` given: load it (from any device: predicting is always allowed) and check it covers `space`.
    2. else a table cached for this device fingerprint and space in `cache_dir`.
    3. else build one here, if the target is present (else a one-line error saying where to build it).

    `measure_opts` are `MeasureSettings` fields (batch_size, threads, dtype, channels_last, repeats, ...).
    """
    if lut_path is not None:
        table = LatencyTable.load(lut_path)
        table.require_covers(space)
        return table
    settings = MeasureSettings(target=target, **measure_opts)
    path = cached_table_path(space, settings, cache_dir)  # raises the clear error when the target is absent
    if path.is_file():
        table = LatencyTable.load(path)
        table.require_covers(space)
        return table
    with Measurer(settings) as measurer:
        return build_table(space, measurer, path, calibration or CalibrationPlan(), progress=progress)
