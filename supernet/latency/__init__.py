"""Latency lookup tables: block latencies measured in the runtime a child is deployed in, fitted to whole
children. This module is the package's public door; search, export and the command line use only it."""

from __future__ import annotations

from pathlib import Path

from supernet.latency.build import build_table, error_report, kendall_tau, partial_path
from supernet.latency.measure import Measurer
from supernet.latency.runtimes import (
    Runtime,
    device_name,
    open_runtime,
    require_target,
    target_present,
)
from supernet.latency.settings import (
    DeviceMismatchError,
    FitConfig,
    LatencyConfig,
    LatencyError,
    LatencySettingsError,
    LatencyTableError,
    LutConfig,
    MissingEntryError,
    TargetUnavailableError,
    latency_config,
)
from supernet.latency.table import (
    Fit,
    LatencyTable,
    describe,
    reachable_layers,
    restrict_resolutions,
    space_tag,
)
from supernet.latency.validate import measurer_for, settings_for, validate_table, why_not_measurable_here
from supernet.space import SearchSpace

__all__ = [
    "DeviceMismatchError", "Fit", "FitConfig", "LatencyConfig", "LatencyError",
    "LatencySettingsError", "LatencyTable", "LatencyTableError", "LutConfig", "Measurer",
    "MissingEntryError", "Runtime", "TargetUnavailableError", "build_table", "cached_table_path", "describe",
    "device_name", "error_report", "get_table", "graph_cache", "kendall_tau", "latency_config",
    "measurer_for", "open_runtime", "partial_path", "reachable_layers", "require_target",
    "restrict_resolutions", "settings_for", "space_tag", "target_present", "validate_table",
    "why_not_measurable_here",
]


def cached_table_path(space: SearchSpace, measurer: Measurer) -> Path:
    """<cache_dir>/<fingerprint-id>-<space name>-<space hash>.json for this device, runtime and settings."""
    table_id = LatencyTable(measurer.fingerprint(), space, {}).fingerprint_id
    return Path(measurer.cfg.cache_dir) / f"{table_id}-{space_tag(space)}.json"


def graph_cache(cfg: LatencyConfig) -> Path:
    """Where builds keep the ONNX graphs they export, for the next build: <cache_dir>/graphs."""
    return Path(cfg.cache_dir) / "graphs"


def get_table(space: SearchSpace, cfg: LatencyConfig, lut_path: str | Path | None = None, *,
              progress: bool | None = None) -> LatencyTable:
    """The latency table to predict `space`'s children on `cfg.target` with.

    1. `lut_path` given: load it (from any device: predicting is always allowed) and check it covers `space`
       and, where `cfg.runtime` names one, was measured in that runtime.
    2. else a table cached for this fingerprint and space in `cfg.cache_dir`.
    3. else build one here, if the target and the runtime are (else a one-line error saying what is missing).
    """
    if lut_path is not None:
        table = LatencyTable.load(lut_path)
        if cfg.runtime != "auto" and table.runtime != cfg.runtime:
            raise LatencyTableError(f"{lut_path} was measured in {table.runtime}, not runtime={cfg.runtime}: "
                                    f"pass a {cfg.runtime} table or set runtime={table.runtime}")
        table.require_covers(space)
        return table
    with Measurer(cfg, graph_dir=graph_cache(cfg)) as measurer:
        path = cached_table_path(space, measurer)
        if path.is_file():
            table = LatencyTable.load(path)
            table.require_covers(space)
            return table
        return build_table(space, measurer, path, progress=progress)
