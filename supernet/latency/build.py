"""Building a table: time every reachable block, then whole children, and fit block sums to children.

Blocks and children are measured in `sweeps` passes far apart in time (a burst of load from another
process then spoils one value of a thing, not all). Progress goes to `<out>.partial`, rewritten atomically
every few seconds and when the build stops for any reason; the same build run again measures only what
is missing.

The fit. A whole child differs from the sum of its blocks timed alone by a fixed cost per call and a cost
per block (each block alone pays its own call and finds its input hot in cache), part of it growing with
the input size. The candidate forms

    sum                          measured ≈ sum
    scale                        measured ≈ a * sum
    scale+offset                 measured ≈ a * sum + c
    scale+per_layer+offset       measured ≈ a * sum + b * n_layers + c
    scale+offset_per_resolution  measured ≈ a * sum + c[resolution]

are fitted by least squares on relative error; the one with the lowest leave-one-out MAPE on the fit
children is kept (a simpler one wins a tie), and its error on held-out children is stored beside it.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from supernet.latency.measure import Measurer
from supernet.latency.settings import FitConfig, LatencySettingsError, LatencyTableError, percentile_of
from supernet.latency.table import (
    Fingerprint,
    Fit,
    LatencyTable,
    describe,
    differences,
    reachable_layers,
    space_hash,
)
from supernet.run.files import atomic_write_text
from supernet.space import Arch, LayerSpec, SearchSpace

T = TypeVar("T")
PARTIAL_FORMAT = "supernet-latency-table-partial"
MEASURE_KEYS = ("repeats", "warmup", "rounds", "sweeps", "statistic", "paired")
PER_RESOLUTION = "scale+offset_per_resolution"
# form -> the coefficients it fits, in order of growing freedom ("c_r": one offset per resolution)
FORMS: dict[str, tuple[str, ...]] = {
    "sum": (), "scale": ("a",), "scale+offset": ("a", "c"), "scale+per_layer+offset": ("a", "b", "c"),
    PER_RESOLUTION: ("a", "c_r"),
}


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def build_table(space: SearchSpace, measurer: Measurer, out: Path, *, progress: bool | None = None,
                layers_per_group: int = 16, children_per_group: int = 8,
                clock: Callable[[], float] = time.monotonic) -> LatencyTable:
    """Measure `space` with `measurer` (its settings: `measurer.cfg`), fit, write the table to `out`.

    `progress`: show bars (None: only when stdout is a terminal). Resumes from `<out>.partial` if present.
    """
    out, cfg = Path(out), measurer.cfg
    show = sys.stdout.isatty() if progress is None else progress
    measure = {name: getattr(cfg, name) for name in MEASURE_KEYS}
    state = _Progress(partial_path(out), measurer.fingerprint(), measure, space, cfg.save_every_s, clock)
    measurer.pair_with(space.layers(space.min()))
    layers = reachable_layers(space)
    fit_archs, held_archs = fit_split(space, cfg.fit)

    def time_archs(archs: Sequence[Arch]) -> list[float]:
        return measurer.time_children([space.layers(a) for a in archs])

    def after_group() -> None:
        if measurer.reference_samples:
            state.reference_ms.append(measurer.reference_ms() or 0.0)
            measurer.reference_samples.clear()
        state.changed()

    try:
        measure_in_sweeps(layers, LayerSpec.key, measurer.time_layers, state.entries, cfg.sweeps,
                          layers_per_group, after_group=after_group, desc="blocks", show=show)
        measure_in_sweeps(fit_archs + held_archs, str, time_archs, state.children, cfg.sweeps,
                          children_per_group, after_group=after_group, desc="children", show=show)
    finally:
        state.save()

    unit = 1.0
    if cfg.paired:  # the values are ratios to the reference: its latency over the build is the unit
        unit = measure["reference_ms"] = float(np.median(state.reference_ms))

    def value(values: list[float]) -> float:
        return combine(values, cfg.summary_statistic) * unit

    entries = {layer.key(): value(state.entries[layer.key()]) for layer in layers}
    children = {str(a): value(state.children[str(a)]) for a in fit_archs + held_archs}
    table = LatencyTable(state.fingerprint, space, entries, measure=measure)
    _fit_table(table, fit_archs, held_archs, children)
    table.meta = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "build_s": round(state.elapsed_s(), 3), "export_s": round(measurer.export_s, 3),
                  "layers": len(layers), "fit_plan": asdict(cfg.fit)}
    table.save(out)
    partial_path(out).unlink(missing_ok=True)
    return table


# ----- which children
def distinct_random_archs(space: SearchSpace, n: int, rng: random.Random,
                          exclude: Collection[Arch] = ()) -> list[Arch]:
    """Up to `n` distinct random children not in `exclude` (fewer only if the space is that small)."""
    seen, out = set(exclude), []
    for _ in range(50 * n):
        if len(out) == n:
            break
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def fit_split(space: SearchSpace, plan: FitConfig) -> tuple[list[Arch], list[Arch]]:
    """(fit children, held-out children). Max and min always go to the fit: they anchor the extremes."""
    extremes = list(dict.fromkeys([space.max(), space.min()]))
    randoms = distinct_random_archs(space, plan.children, random.Random(plan.seed), exclude=extremes)
    if len(randoms) < 2:
        raise LatencySettingsError(
            f"space '{space.name}' has {space.size()} children: too few to fit on some and hold others out; "
            "widen its choices")
    n_held = max(1, round(plan.held_out * len(randoms)))
    return extremes + randoms[n_held:], randoms[:n_held]


# ----- sweeps
def combine(values: Sequence[float], statistic: str) -> float:
    return float(np.percentile(values, percentile_of(statistic)))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def measure_in_sweeps(items: Sequence[T], key: Callable[[T], str],
                      measure: Callable[[Sequence[T]], list[float]], values: dict[str, list[float]],
                      sweeps: int, group: int, *, after_group: Callable[[], None], desc: str,
                      show: bool) -> None:
    """Append to `values[key(item)]` until every item has `sweeps` values; values already there are kept.
    `after_group` runs after each group (to save progress), so an interruption loses at most one group."""
    done = sum(min(len(values.get(key(item), [])), sweeps) for item in items)
    with tqdm(total=len(items) * sweeps, initial=done, desc=desc, unit="timing", disable=not show,
              dynamic_ncols=True) as bar:
        for sweep in range(sweeps):
            todo = [item for item in items if len(values.get(key(item), [])) <= sweep]
            if sweep:  # other neighbours, other place in the group, other moment (seeded: resumable)
                random.Random(sweep).shuffle(todo)
            for part in _chunks(todo, group):
                for item, ms in zip(part, measure(part), strict=True):
                    values.setdefault(key(item), []).append(ms)
                after_group()
                bar.update(len(part))


class _Progress:
    """The values measured so far, saved atomically at most every `every_s` seconds (and on demand)."""

    def __init__(self, path: Path, fingerprint: Fingerprint, measure: dict[str, Any], space: SearchSpace,
                 every_s: float, clock: Callable[[], float]):
        self.path, self.fingerprint, self.measure, self.every_s, self.clock = (path, fingerprint, measure,
                                                                               every_s, clock)
        self.space_hash = space_hash(space.spec)
        self.entries: dict[str, list[float]] = {}  # block key -> its value in each sweep so far
        self.children: dict[str, list[float]] = {}  # arch string -> its value in each sweep so far
        self.reference_ms: list[float] = []  # paired: the reference's latency in each group so far
        self.measure_s = 0.0
        self._dirty = False
        self._last_save = self._started = clock()
        if path.is_file():
            self._resume()

    def _resume(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != PARTIAL_FORMAT:
                raise ValueError("not a partial latency table")
            fingerprint, saved_hash, measure = data["fingerprint"], data["space_hash"], dict(data["measure"])
            entries = {str(k): [float(x) for x in v] for k, v in data["entries"].items()}
            children = {str(k): [float(x) for x in v] for k, v in data["children"].items()}
            reference_ms = [float(x) for x in data["reference_ms"]]
            measure_s = float(data["measure_s"])
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
        self.reference_ms = reference_ms

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
                "measure": self.measure, "reference_ms": self.reference_ms, "measure_s": self.elapsed_s(),
                "entries": self.entries, "children": self.children}
        atomic_write_text(self.path, json.dumps(data) + "\n")
        self._dirty = False
        self._last_save = self.clock()


# ----- the fit
def _fit_table(table: LatencyTable, fit_archs: list[Arch], held_archs: list[Arch],
               measured: dict[str, float]) -> None:
    """Choose and store the fit from block sum to measured latency, with its held-out error."""
    def rows(archs: list[Arch]) -> tuple[list[float], list[int], list[float], list[int]]:
        return ([table.predict_raw(a) for a in archs], [table.n_layers(a) for a in archs],
                [measured[str(a)] for a in archs], [a.resolution for a in archs])

    raw, n_layers, y, resolutions = rows(fit_archs)
    table.fit, candidates = choose_fit(raw, n_layers, y, resolutions)
    held_raw, _, held_y, _ = rows(held_archs)
    table.fit_report = {
        "chosen_by": f"lowest leave-one-out MAPE on the {len(fit_archs)} fit children",
        "candidates_loo_mape_pct": candidates,
        "held_out": error_report([table.predict(a) for a in held_archs], held_y),
        "held_out_raw_sum": error_report(held_raw, held_y),
        "children": [{"arch": str(a), "split": split, "measured_ms": measured[str(a)],
                      "raw_ms": table.predict_raw(a), "n_layers": table.n_layers(a)}
                     for split, archs in (("fit", fit_archs), ("held_out", held_archs)) for a in archs],
    }


def _design(form: str, raw: np.ndarray, n_layers: np.ndarray,
            resolutions: np.ndarray | None) -> tuple[list[str], np.ndarray]:
    """The names of `form`'s coefficients and its design matrix (one row per child)."""
    columns = {"a": raw, "b": n_layers, "c": np.ones_like(raw)}
    names, matrix = [], []
    for name in FORMS[form]:
        if name == "c_r":
            if resolutions is None:
                raise ValueError(f"form {form} needs each child's resolution")
            for r in sorted(set(resolutions.tolist())):
                names.append(f"c@{r}")
                matrix.append((resolutions == r).astype(float))
        else:
            names.append(name)
            matrix.append(columns[name])
    return names, np.stack(matrix, axis=1)


def fit_form(form: str, raw: Sequence[float], n_layers: Sequence[int], measured: Sequence[float],
             resolutions: Sequence[int] | None = None) -> Fit:
    """Least squares on relative residuals (rows scaled by 1/measured)."""
    if form == "sum":
        return Fit("sum")
    x, n, y = (np.asarray(v, dtype=float) for v in (raw, n_layers, measured))
    names, design = _design(form, x, n, None if resolutions is None else np.asarray(resolutions, dtype=int))
    coef, *_ = np.linalg.lstsq(design / y[:, None], np.ones_like(y), rcond=None)
    values = dict(zip(names, (float(v) for v in coef), strict=True))
    offsets = tuple((int(name[2:]), v) for name, v in values.items() if name.startswith("c@"))
    return Fit(form, values.get("a", 1.0), values.get("b", 0.0), values.get("c", 0.0), offsets)


def leave_one_out_mape(form: str, raw: Sequence[float], n_layers: Sequence[int],
                       measured: Sequence[float], resolutions: Sequence[int] | None = None) -> float:
    """Mean absolute percent error of `form` predicting each child from a fit on all the others."""
    res = list(resolutions) if resolutions is not None else [None] * len(measured)
    errors = []
    for i in range(len(measured)):
        rest = [j for j in range(len(measured)) if j != i]
        fit = fit_form(form, [raw[j] for j in rest], [n_layers[j] for j in rest], [measured[j] for j in rest],
                       None if resolutions is None else [res[j] for j in rest])
        errors.append(abs(fit.apply(raw[i], n_layers[i], res[i]) - measured[i]) / measured[i] * 100.0)
    return float(np.mean(errors))


def n_coefficients(form: str, resolutions: Sequence[int] | None) -> int:
    per_resolution = len(set(resolutions)) if resolutions is not None else 0
    return sum(per_resolution if name == "c_r" else 1 for name in FORMS[form])


def choose_fit(raw: Sequence[float], n_layers: Sequence[int], measured: Sequence[float],
               resolutions: Sequence[int] | None = None) -> tuple[Fit, dict[str, float]]:
    """The form with the lowest leave-one-out MAPE, refitted on all fit children; and every form's score.

    A form is tried only with two more children than coefficients (each leave-one-out fit stays
    overdetermined), and only while `a * sum` still carries a quarter of the measured latency on average:
    a fit that predicts from the layer count or a constant alone would hide a mismeasured block. The
    per-resolution form needs two resolutions or more and two fit children of each.
    """
    def eligible(form: str) -> bool:
        if form == PER_RESOLUTION:
            counts = Counter(resolutions or [])
            if len(counts) < 2 or min(counts.values()) < 2:
                return False
        if len(measured) < n_coefficients(form, resolutions) + 2:
            return False
        if form == "sum":
            return True
        fit = fit_form(form, raw, n_layers, measured, resolutions)
        share = fit.a * np.asarray(raw, dtype=float) / np.asarray(measured, dtype=float)
        return float(np.mean(share)) >= 0.25

    scores = {form: leave_one_out_mape(form, raw, n_layers, measured, resolutions)
              for form in FORMS if eligible(form)}
    best = min(scores, key=lambda form: (round(scores[form], 3), n_coefficients(form, resolutions)))
    return fit_form(best, raw, n_layers, measured, resolutions), scores


# ----- how well predictions match measurements
def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either sequence handled as in scipy.stats.kendalltau); nan below 2 items."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"kendall_tau: {a.size} values against {b.size}")
    if a.size < 2:
        return math.nan
    upper = np.triu_indices(a.size, k=1)
    da = np.sign(a[:, None] - a[None, :])[upper]
    db = np.sign(b[:, None] - b[None, :])[upper]
    untied_a, untied_b = float(np.count_nonzero(da)), float(np.count_nonzero(db))
    if untied_a == 0 or untied_b == 0:
        return math.nan
    return float(np.sum(da * db)) / math.sqrt(untied_a * untied_b)


def error_report(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Relative errors of `predicted` against `measured` (both in ms), in percent, plus rank agreement."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.size == 0 or p.shape != m.shape:
        raise ValueError(f"error_report: need equal, non-empty sequences, got {p.size} and {m.size}")
    rel = np.abs(p - m) / m * 100.0
    return {"n": int(p.size), "mape_pct": float(rel.mean()),
            "within5_pct": float((rel <= 5.0).mean() * 100.0),
            "within10_pct": float((rel <= 10.0).mean() * 100.0), "max_error_pct": float(rel.max()),
            "kendall_tau": kendall_tau(p, m)}
