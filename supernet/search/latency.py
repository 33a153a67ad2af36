"""The search's use of latency tables: the table that predicts, and the front timed as the table was."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from supernet.latency import (
    LatencyConfig,
    LatencyTable,
    error_report,
    get_table,
    kendall_tau,
    measurer_for,
    target_present,
    why_not_measurable_here,
)
from supernet.search.errors import SearchError
from supernet.space import Arch, SearchSpace

__all__ = ["FrontMeasurement", "kendall_tau", "load_table", "measure_front", "table_identity"]


def load_table(space: SearchSpace, target: str, lut: str | Path | None, settings: LatencyConfig
               ) -> LatencyTable:
    """`lut` if given; else the table cached for this device and runtime; else one built here if the target
    is present (else the one-line error saying to build it on the target machine and pass --lut)."""
    return get_table(space, replace(settings, target=target), lut_path=lut)


def table_identity(table: Any) -> dict[str, Any]:
    """What the predicted latencies depend on (recorded in the search state): the table's content, not
    where it lies, so the same table passed with --lut or found in the cache resumes the same search."""
    if isinstance(table, LatencyTable):
        return {"fingerprint_id": table.fingerprint_id, "digest": table.digest[:16]}
    return {"table": type(table).__name__}


@dataclass
class FrontMeasurement:
    """Measured end-to-end latencies of the front (None where not measured) and why, if they were not."""

    latencies_ms: list[float | None]
    note: str | None = None
    report: dict[str, float] | None = None  # predicted vs measured: MAPE, share within ±5/10 %, Kendall tau


def measure_front(space: SearchSpace, archs: Sequence[Arch], predicted_ms: Sequence[float], table: Any,
                  target: str, mode: str, repeats: int | None = None, graph_dir: Path | None = None
                  ) -> FrontMeasurement:
    """Time each child of the front end to end in the table's runtime with the table's settings (in an
    ONNX runtime: the graph `supernet export` would write for it, kept in `graph_dir` for later searches),
    as the table's own children were timed, so predicted and measured compare like with like.

    mode "auto" measures where that is meaningful (the target is here and the table was built on this very
    device, runtime and settings) and says why not otherwise; "true" demands it; "false" skips it.
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
    with measurer_for(table, graph_dir=graph_dir, repeats=repeats) as measurer:
        measured = measurer.time_children([space.layers(arch) for arch in archs])
    return FrontMeasurement(list(measured), None, error_report(list(predicted_ms), measured))


def _why_not_measurable(table: Any, target: str) -> str | None:
    if not target_present(target):
        return f"the {target} target is not present on this machine; the front keeps predicted latencies only"
    if not isinstance(table, LatencyTable):
        return "the latencies come from a stand-in predictor, not a measured table"
    problem = why_not_measurable_here(table)
    return None if problem is None else f"the front was not re-measured: {problem}"
