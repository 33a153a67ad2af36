"""Re-checking a table on the present device: measure fresh children end to end, compare with prediction."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from supernet.latency.build import MEASURE_KEYS, LayerTimer
from supernet.latency.children import distinct_random_archs
from supernet.latency.errors import DeviceMismatchError, TargetUnavailableError
from supernet.latency.fingerprint import current_fingerprint, describe
from supernet.latency.measure import Measurer
from supernet.latency.reference import smallest_child_plan
from supernet.latency.settings import MeasureSettings
from supernet.latency.space_io import space_tag
from supernet.latency.stats import error_report
from supernet.latency.sweeps import combine, measure_in_sweeps
from supernet.latency.table import LatencyTable
from supernet.space import Arch


def settings_for(table: LatencyTable, **overrides: Any) -> MeasureSettings:
    """Measure exactly as the table was measured (target, batch, threads, dtype, format, statistic ...)."""
    fp, measure = table.fingerprint, table.measure
    values: dict[str, Any] = {
        "target": fp["target"], "batch_size": fp["batch_size"], "dtype": fp["dtype"],
        "channels_last": fp["memory_format"] == "channels_last",
        **{k: measure[k] for k in MEASURE_KEYS if k in measure},
    }
    if measure.get("paired") and "reference" not in measure:
        values["reference"] = "fixed_network"  # paired before the space's own child became the reference
    if fp["target"] == "cpu":
        values["threads"] = fp["threads"]
    if fp.get("cudnn_benchmark") is not None:
        values["cudnn_benchmark"] = fp["cudnn_benchmark"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return MeasureSettings(**values)


def measurer_for(table: LatencyTable, **overrides: Any) -> Measurer:
    """A measurer with the table's settings, counting in the table's unit and paired with the table's
    reference when it was timed in pairs.

    Refuses when the table's target is absent here (another device).
    """
    try:
        measurer = Measurer(settings_for(table, **overrides))
        measurer.pair_with(smallest_child_plan(table.space))
        measurer.unit_ms = table.measure.get("reference_ms")
        return measurer
    except TargetUnavailableError:
        raise DeviceMismatchError(
            f"table {table.name} was built on {describe(table.fingerprint)}; this machine has no CUDA "
            "device. Predicting is allowed, measuring-dependent steps are not: validate it on the machine "
            "it was built on") from None


def why_not_measurable_here(table: LatencyTable) -> str | None:
    """None when this machine can time children as `table` was timed (its target is here and the device
    fingerprint, with the table's own settings, matches); else why not, in a sentence."""
    try:
        table.check_device(current_fingerprint(settings_for(table)))
    except (DeviceMismatchError, TargetUnavailableError) as err:
        return str(err)
    return None


def validate_table(table: LatencyTable, measurer: LayerTimer, children: int = 20, seed: int = 1,
                   *, progress: bool | None = None, group: int = 8, anchors: int = 8) -> dict[str, Any]:
    """Error of `table.predict` (and of the raw sum) on `children` fresh random children.

    Besides them, up to `anchors` of the table's own calibration children are measured again, in the same
    sweeps: how much slower or faster they run now than at build time is the device's drift. The report
    gives it, and the error that remains once it is taken out, so that a reader can tell a table that is
    wrong from a device that is not in the state it was in when the table was built (a virtual machine's
    speed wanders by a few percent over minutes). The headline error (`calibrated`) keeps the drift in.

    With paired timing the fresh children are counted in the table's unit (its reference latency), so the
    headline compares like with like; `device_speed` then gives the reference's latency now against the
    table's, and the error of the prediction against the children's latency in milliseconds of this
    moment, which is what a stopwatch would see now.

    With two sweeps or more, `repeatability` compares two halves of each fresh child's sweeps, the odd
    ones combined against the even ones (so both halves span the whole validation in time): how well the
    device agrees with itself, the ceiling for any table's agreement with it. Half the sweeps are noisier
    than all of them, so the ceiling is a conservative one. Each child's per-sweep values are in the
    report, for a reader who wants to look at the noise.

    Refuses (DeviceMismatchError) when the table was measured on another device or with other settings.
    """
    table.check_device(measurer.fingerprint())
    measurer.pair_with(smallest_child_plan(table.space))
    calibration_children = table.calibration_report.get("children", [])
    built = {Arch.parse(c["arch"]): float(c["measured_ms"]) for c in calibration_children}
    archs = distinct_random_archs(table.space, children, random.Random(seed), exclude=built)
    anchor_archs = spread_over_latency(built, anchors)
    show = sys.stdout.isatty() if progress is None else progress
    settings = measurer.settings
    values: dict[str, list[float]] = {}

    def time_archs(chunk: Sequence[Arch]) -> list[float]:
        return measurer.time_children([table.space.layers(a) for a in chunk])

    measure_in_sweeps(interleave(archs, anchor_archs), str, time_archs, values, settings.sweeps, group,
                      after_group=lambda: None, desc="children", show=show)
    measured = [combine(values[str(a)], settings.summary_statistic) for a in archs]
    predicted = [table.predict(a) for a in archs]
    raw = [table.predict_raw(a) for a in archs]
    report: dict[str, Any] = {
        "table": str(table.path) if table.path else None,
        "space": space_tag(table.space),
        "calibrated": error_report(predicted, measured),
        "raw_sum": error_report(raw, measured),
        "drift": None,
        "device_speed": None,
        "repeatability": None,
        "children": [{"arch": str(a), "measured_ms": m, "predicted_ms": p, "sweeps_ms": values[str(a)]}
                     for a, m, p in zip(archs, measured, predicted, strict=True)],
    }
    if settings.sweeps >= 2:
        even, odd = ([combine(values[str(a)][start::2], settings.summary_statistic) for a in archs]
                     for start in (0, 1))
        report["repeatability"] = error_report(odd, even)
    unit_ms, now_ms = measurer.unit_ms, measurer.reference_ms()
    if unit_ms is not None and now_ms is not None:
        speed = now_ms / unit_ms
        report["device_speed"] = {"reference_ms_table": unit_ms, "reference_ms_now": now_ms,
                                  "pct": (speed - 1.0) * 100.0,
                                  "calibrated_at_current_speed": error_report(predicted,
                                                                              [m * speed for m in measured])}
    if anchor_archs:
        now = {a: combine(values[str(a)], settings.summary_statistic) for a in anchor_archs}
        ratio = float(np.median([now[a] / built[a] for a in anchor_archs]))
        report["drift"] = {"anchors": len(anchor_archs), "ratio": ratio, "pct": (ratio - 1.0) * 100.0,
                           "calibrated_without_drift": error_report([p * ratio for p in predicted], measured)}
    return report


def spread_over_latency(measured: dict[Arch, float], n: int) -> list[Arch]:
    """Up to `n` of `measured`'s archs, evenly spaced in latency from fastest to slowest."""
    if n <= 0 or not measured:
        return []
    ordered = sorted(measured, key=measured.__getitem__)
    picks = np.linspace(0, len(ordered) - 1, min(n, len(ordered))).round().astype(int)
    return [ordered[i] for i in dict.fromkeys(picks.tolist())]


def interleave(items: list[Arch], extra: list[Arch]) -> list[Arch]:
    """`items` with `extra` spread evenly among them, so the anchors are timed all along the first sweep."""
    out = list(items)
    for i, arch in reversed(list(enumerate(extra))):
        out.insert(round((i + 0.5) * len(items) / len(extra)), arch)
    return out
