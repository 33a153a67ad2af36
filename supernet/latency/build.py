"""Building a latency table: measure every reachable layer, then whole children to calibrate; resumable.

Blocks and children are measured in `settings.sweeps` sweeps (see `supernet.latency.sweeps`). Progress
goes to a sidecar `<out>.partial` file, rewritten atomically every few seconds and when the build stops for
any reason (Ctrl-C, a crash). Running the same build again reads it and measures only what is missing (at
most the group in flight when it stopped is measured again); the finished table replaces it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from supernet.latency.calibrate import choose_calibration
from supernet.latency.children import CalibrationPlan, calibration_split
from supernet.latency.errors import LatencyTableError
from supernet.latency.fingerprint import Fingerprint, describe, differences
from supernet.latency.keys import reachable_layers
from supernet.latency.reference import smallest_child_plan
from supernet.latency.space_io import space_hash
from supernet.latency.stats import error_report
from supernet.latency.sweeps import combine, measure_in_sweeps
from supernet.latency.table import LatencyTable
from supernet.run.files import atomic_write_text
from supernet.space import Arch, LayerSpec, SearchSpace

PARTIAL_FORMAT = "supernet-latency-table-partial"
MEASURE_KEYS = ("repeats", "warmup", "rounds", "sweeps", "statistic", "paired", "reference")


class LayerTimer(Protocol):
    """What a build needs from a measurer (`supernet.latency.measure.Measurer`, or a stand-in in tests).

    `unit_ms`: with paired timing, the reference latency that its values are counted in (None otherwise,
    or before the first timing); `pair_with(plan)`: the child to use as reference, where the settings ask
    for the space's smallest child; `reference_ms(since)`: the reference's latency over its calls from
    the mark `since` (a `reference_count()`) on.
    """

    settings: Any
    unit_ms: float | None

    def pair_with(self, plan: Sequence[LayerSpec]) -> None: ...
    def reference_count(self) -> int: ...
    def reference_ms(self, since: int = 0) -> float | None: ...
    def fingerprint(self) -> Fingerprint: ...
    def time_layers(self, layers: Sequence[LayerSpec]) -> list[float]: ...
    def time_children(self, plans: Sequence[Sequence[LayerSpec]]) -> list[float]: ...


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


class _Progress:
    """The measured values so far, saved atomically at most every `every_s` seconds (and on demand)."""

    def __init__(self, path: Path, fingerprint: Fingerprint, measure: dict[str, Any], space: SearchSpace,
                 every_s: float, clock: Callable[[], float]):
        self.path, self.fingerprint, self.every_s, self.clock = path, fingerprint, every_s, clock
        self.measure = measure
        self.space_hash = space_hash(space.spec)
        self.entries: dict[str, list[float]] = {}  # block key -> its value in each sweep so far
        self.children: dict[str, list[float]] = {}  # arch string -> its value in each sweep so far
        self.unit_ms: float | None = None  # paired timing: the reference latency the values are counted in
        self.measure_s = 0.0
        self._dirty = False
        self._last_save = clock()
        self._started = clock()
        if path.is_file():
            self._resume()

    def _resume(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != PARTIAL_FORMAT:
                raise ValueError("not a partial latency table")
            fingerprint, saved_hash = data["fingerprint"], data["space_hash"]
            measure = dict(data.get("measure", {}))
            entries = {str(k): [float(x) for x in v] for k, v in data["entries"].items()}
            children = {str(k): [float(x) for x in v] for k, v in data["children"].items()}
            unit_ms = None if data.get("unit_ms") is None else float(data["unit_ms"])
            measure_s = float(data.get("measure_s", 0.0))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
            raise LatencyTableError(f"partial build {self.path} cannot be resumed ({err}); delete it to "
                                    "start over") from err
        if fingerprint != self.fingerprint:
            raise LatencyTableError(
                f"partial build {self.path} was measured on {describe(fingerprint)} (differs in "
                f"{'; '.join(differences(fingerprint, self.fingerprint))}); resume it with the same settings "
                "on that machine, or delete it to start over")
        if saved_hash != self.space_hash:
            raise LatencyTableError(f"partial build {self.path} is for another space (hash {saved_hash}, now "
                                    f"{self.space_hash}); delete it or choose another --out")
        if measure != self.measure:
            changed = ", ".join(f"{k}={measure.get(k)!r} then, {self.measure.get(k)!r} now"
                                for k in sorted(set(measure) | set(self.measure))
                                if measure.get(k) != self.measure.get(k))
            raise LatencyTableError(f"partial build {self.path} was measured with other settings "
                                    f"({changed}); resume it with those settings or delete it to start over")
        self.entries, self.children, self.measure_s = entries, children, measure_s
        self.unit_ms = unit_ms

    def changed(self) -> None:
        self._dirty = True
        if self.clock() - self._last_save >= self.every_s:
            self.save()

    def elapsed_s(self) -> float:
        return self.measure_s + self.clock() - self._started

    def save(self) -> None:
        if not self._dirty:
            return
        data = {"format": PARTIAL_FORMAT, "fingerprint": self.fingerprint, "space_hash": self.space_hash,
                "measure": self.measure, "unit_ms": self.unit_ms, "measure_s": self.elapsed_s(),
                "entries": self.entries, "children": self.children}
        atomic_write_text(self.path, json.dumps(data) + "\n")
        self._dirty = False
        self._last_save = self.clock()


def build_table(space: SearchSpace, measurer: LayerTimer, out: Path,
                plan: CalibrationPlan = CalibrationPlan(), *, progress: bool | None = None,
                save_every_s: float = 5.0, layers_per_group: int = 16, children_per_group: int = 8,
                clock: Callable[[], float] = time.monotonic) -> LatencyTable:
    """Measure `space` with `measurer`, calibrate, write the table to `out` and return it.

    `progress`: show bars (None: only when stdout is a terminal). Resumes from `<out>.partial` if present.
    """
    out = Path(out)
    show = sys.stdout.isatty() if progress is None else progress
    settings = measurer.settings
    state = _Progress(partial_path(out), measurer.fingerprint(), _measure_record(settings), space,
                      save_every_s, clock)
    measurer.pair_with(smallest_child_plan(space))
    if state.unit_ms is not None:
        measurer.unit_ms = state.unit_ms  # a resumed build counts in the unit its first part was counted in
    layers = reachable_layers(space)
    fit_archs, held_archs = calibration_split(space, plan)

    def time_archs(archs: Sequence[Arch]) -> list[float]:
        return measurer.time_children([space.layers(a) for a in archs])

    def after_group() -> None:
        state.unit_ms = measurer.unit_ms
        state.changed()

    try:
        measure_in_sweeps(layers, LayerSpec.key, measurer.time_layers, state.entries, settings.sweeps,
                          layers_per_group, after_group=after_group, desc="blocks", show=show)
        children_mark = measurer.reference_count()
        measure_in_sweeps(fit_archs + held_archs, str, time_archs, state.children, settings.sweeps,
                          children_per_group, after_group=after_group, desc="children", show=show)
    finally:
        state.save()

    # Paired values were counted in the reference's latency at the start (a machine in a slow phase then
    # would have every value slow). The table's unit is its latency over all the calibration children:
    # a longer stretch, and the company that validation and search time it in.
    measure, scale = dict(state.measure), 1.0
    build_reference_ms = measurer.reference_ms(since=children_mark) or measurer.reference_ms()
    if state.unit_ms is not None and build_reference_ms is not None:
        scale = build_reference_ms / state.unit_ms
        measure["reference_ms"] = build_reference_ms
    elif state.unit_ms is not None:  # everything came from the partial file: nothing was timed now
        measure["reference_ms"] = state.unit_ms
    if "reference_ms" in measure:
        measurer.unit_ms = measure["reference_ms"]  # what it times from now on compares with the table

    def value(values: list[float]) -> float:
        return combine(values, settings.summary_statistic) * scale

    entries = {layer.key(): value(state.entries[layer.key()]) for layer in layers}
    children = {str(a): value(state.children[str(a)]) for a in fit_archs + held_archs}
    table = LatencyTable(state.fingerprint, space, entries, measure=measure)
    _calibrate(table, fit_archs, held_archs, children)
    table.meta = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "build_s": round(state.elapsed_s(), 3), "layers": len(layers),
                  "calibration_plan": asdict(plan)}
    table.save(out)
    partial_path(out).unlink(missing_ok=True)
    return table


def _measure_record(settings: Any) -> dict[str, Any]:
    """How the values were measured, beyond the device fingerprint: kept in the table and the partial file."""
    return {name: getattr(settings, name) for name in MEASURE_KEYS if hasattr(settings, name)}


def _calibrate(table: LatencyTable, fit_archs: list[Arch], held_archs: list[Arch],
               measured: dict[str, float]) -> None:
    """Choose and store the correction from block sum to measured latency, with its held-out error."""
    def rows(archs: list[Arch]) -> tuple[list[float], list[int], list[float], list[int]]:
        return ([table.predict_raw(a) for a in archs], [table.n_layers(a) for a in archs],
                [measured[str(a)] for a in archs], [a.resolution for a in archs])

    raw, n_layers, y, resolutions = rows(fit_archs)
    table.calibration, candidates = choose_calibration(raw, n_layers, y, resolutions)
    held_raw, _, held_y, _ = rows(held_archs)
    held_pred = [table.predict(a) for a in held_archs]
    table.calibration_report = {
        "chosen_by": f"lowest leave-one-out MAPE on the {len(fit_archs)} fit children",
        "candidates_loo_mape_pct": candidates,
        "held_out": error_report(held_pred, held_y),
        "held_out_raw_sum": error_report(held_raw, held_y),
        "children": [{"arch": str(a), "split": split, "measured_ms": measured[str(a)],
                      "raw_ms": table.predict_raw(a), "n_layers": table.n_layers(a)}
                     for split, archs in (("fit", fit_archs), ("held_out", held_archs)) for a in archs],
    }
