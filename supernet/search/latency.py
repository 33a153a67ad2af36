"""The search's one door to `supernet.latency`: the table that predicts, and end-to-end measurement."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.latency import (
    CalibrationPlan,
    LatencyTable,
    error_report,
    get_table,
    kendall_tau,
)
from supernet.latency.validate import measurer_for, why_not_measurable_here
from supernet.models import Supernet
from supernet.search.errors import SearchConfigError, SearchError
from supernet.space import Arch, SearchSpace

__all__ = ["FrontMeasurement", "kendall_tau", "load_table", "measure_front", "table_identity",
           "target_present"]


def load_table(space: SearchSpace, target: str, lut: str | Path | None, options: Mapping[str, Any]
               ) -> LatencyTable:
    """`lut` if given; else the table cached for this device; else one built here if the target is present
    (else the one-line error saying to build it on the target machine and pass --lut)."""
    options = dict(options)
    cache_dir = Path(options.pop("cache_dir", "luts"))
    plan = options.pop("calibration", None)
    try:
        calibration = CalibrationPlan(**plan) if plan else None
    except TypeError as err:
        raise SearchConfigError(f"search: 'latency.calibration' takes children, held_out and seed ({err})"
                                ) from err
    return get_table(space, target, lut_path=lut, cache_dir=cache_dir, calibration=calibration, **options)


def table_identity(table: Any) -> dict[str, Any]:
    """What the predicted latencies depend on (recorded in the search state): the table's content, not
    where it lies, so the same table passed with --lut or found in the cache resumes the same search."""
    if isinstance(table, LatencyTable):
        content = json.dumps({"entries": table.entries, "fit": table.calibration.to_json()}, sort_keys=True)
        return {"fingerprint_id": table.fingerprint_id,
                "digest": hashlib.sha256(content.encode()).hexdigest()[:16]}
    return {"table": type(table).__name__}


def target_present(target: str) -> bool:
    return target == "cpu" or (target == "gpu" and torch.cuda.is_available())


@dataclass
class FrontMeasurement:
    """Measured end-to-end latencies of the front (None where not measured) and why, if they were not."""

    latencies_ms: list[float | None]
    note: str | None = None
    report: dict[str, float] | None = None  # predicted vs measured: MAPE, share within ±5/10 %, Kendall tau


def measure_front(model: Supernet, archs: Sequence[Arch], predicted_ms: Sequence[float], table: Any,
                  target: str, mode: str, repeats: int | None = None) -> FrontMeasurement:
    """Time each child of the front end to end on `target`, extracted as plain torch layers, with the
    settings the table was measured with (as `measure_child_latency` does for one model), so predicted and
    measured compare like with like.

    mode "auto" measures where that is meaningful (the target is here and the table was built on this very
    device and settings) and says why not otherwise; "true" demands it; "false" skips it.
    """
    skipped = FrontMeasurement([None] * len(archs))
    if mode == "false" or not archs:
        return skipped
    problem = _why_not_measurable(table, target)
    if problem is not None:
        if mode == "true":
            raise SearchError(f"measure.front=true, but {problem}")
        skipped.note = problem
        return skipped
    # All children in one interleaved pass: a burst of load from another process then spreads over the
    # whole front instead of spoiling one child's samples (as the table's own build measures).
    with measurer_for(table, repeats=repeats) as measurer:
        cases = [measurer.case(model.extract(arch), model.space.spec.in_channels, arch.resolution)
                 for arch in archs]
        measured = measurer.time_cases(cases)
    return FrontMeasurement(list(measured), None, error_report(list(predicted_ms), measured))


def _why_not_measurable(table: Any, target: str) -> str | None:
    if not target_present(target):
        return f"the {target} target is not present on this machine; the front keeps predicted latencies only"
    if not isinstance(table, LatencyTable):
        return "the latencies come from a stand-in predictor, not a measured table"
    problem = why_not_measurable_here(table)
    return None if problem is None else f"the front was not re-measured: {problem}"
