"""Timing as a table was timed: its settings back from its file, and its error on fresh children."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supernet.latency.build import combine, distinct_random_archs, error_report, measure_in_sweeps
from supernet.latency.measure import Measurer
from supernet.latency.runtimes import fingerprint_of, open_runtime
from supernet.latency.settings import LatencyConfig, LatencyError, latency_config
from supernet.latency.table import LatencyTable, space_tag
from supernet.space import Arch


def settings_for(table: LatencyTable, **overrides: Any) -> LatencyConfig:
    """The settings `table` was measured with (target, runtime, batch, threads, precision, effort ...)."""
    fp, measure = table.fingerprint, table.measure
    values: dict[str, Any] = {"target": fp["target"], "runtime": fp["runtime"],
                              "batch_size": fp["batch_size"], "threads": fp.get("threads"),
                              "precision": fp["precision"],
                              **{k: measure[k] for k in ("repeats", "warmup", "rounds", "sweeps", "statistic",
                                                         "paired") if k in measure}}
    if fp.get("graph_optimization"):
        values["graph_optimization"] = fp["graph_optimization"]
    if fp.get("memory_format"):
        values["channels_last"] = fp["memory_format"] == "channels_last"
    if fp.get("cudnn_benchmark") is not None:
        values["cudnn_benchmark"] = fp["cudnn_benchmark"]
    return latency_config(values, **overrides)


def measurer_for(table: LatencyTable, graph_dir: Path | None = None, **overrides: Any) -> Measurer:
    """A measurer with the table's settings, paired with its reference and counting in its unit (keeping
    the graphs it exports in `graph_dir`, if given)."""
    measurer = Measurer(settings_for(table, **overrides), graph_dir=graph_dir)
    measurer.pair_with(table.space.layers(table.space.min()))
    measurer.unit_ms = table.measure.get("reference_ms")
    return measurer


def why_not_measurable_here(table: LatencyTable) -> str | None:
    """None when this machine can time as `table` was timed (same target, runtime and fingerprint), else
    why not, in a sentence."""
    try:
        cfg = settings_for(table)
        table.check_device(fingerprint_of(cfg, open_runtime(cfg)))
    except LatencyError as err:
        return str(err)
    return None


def validate_table(table: LatencyTable, measurer: Measurer, children: int = 20, seed: int = 1,
                   *, progress: bool | None = None, group: int = 8) -> dict[str, Any]:
    """Error of `table.predict` (and of the raw block sum) on `children` fresh random children, timed
    end to end as the table's children were; each child's value in every sweep is in the report.

    Refuses (DeviceMismatchError) when the table was measured on another device, runtime or settings.
    """
    table.check_device(measurer.fingerprint())
    measurer.pair_with(table.space.layers(table.space.min()))
    built = {Arch.parse(c["arch"]) for c in table.fit_report.get("children", [])}
    archs = distinct_random_archs(table.space, children, random.Random(seed), exclude=built)
    cfg = measurer.cfg
    values: dict[str, list[float]] = {}

    def time_archs(chunk: Sequence[Arch]) -> list[float]:
        return measurer.time_children([table.space.layers(a) for a in chunk])

    measure_in_sweeps(archs, str, time_archs, values, cfg.sweeps, group, after_group=lambda: None,
                      desc="children", show=sys.stdout.isatty() if progress is None else progress)
    measured = [combine(values[str(a)], cfg.summary_statistic) for a in archs]
    predicted = [table.predict(a) for a in archs]
    return {
        "table": str(table.path) if table.path else None,
        "space": space_tag(table.space),
        "runtime": table.runtime,
        "predicted": error_report(predicted, measured),
        "raw_sum": error_report([table.predict_raw(a) for a in archs], measured),
        "children": [{"arch": str(a), "measured_ms": m, "predicted_ms": p, "sweeps_ms": values[str(a)]}
                     for a, m, p in zip(archs, measured, predicted, strict=True)],
    }
