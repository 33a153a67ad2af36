"""From a sum of block latencies to a network latency: a small linear correction, chosen by held-out error.

A whole child differs from the sum of its blocks timed alone by a fixed cost per call (the outer module
call, the input hand-off) and a cost per block (each block timed alone pays its own call overhead and
finds its input and weights hot in cache). Part of that difference grows with the input size: the
activations handed from block to block, hot when a block is timed alone, are larger at a larger
resolution; and the blocks of one resolution share the moments they were timed in. So the candidate
corrections are

    sum                          measured ≈ sum
    scale                        measured ≈ a * sum
    scale+offset                 measured ≈ a * sum + c
    scale+per_layer+offset       measured ≈ a * sum + b * n_layers + c
    scale+offset_per_resolution  measured ≈ a * sum + c[resolution]

each fitted by least squares on relative error (every child weighs the same, small or large, which is
what MAPE scores), and the one with the lowest leave-one-out MAPE on the fit children is kept; a simpler
form wins a tie. Its error on children it never saw is stored beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PER_RESOLUTION = "scale+offset_per_resolution"
# form -> the coefficients it fits, in order of growing freedom ("c_r": one offset per resolution)
FORMS: dict[str, tuple[str, ...]] = {
    "sum": (),
    "scale": ("a",),
    "scale+offset": ("a", "c"),
    "scale+per_layer+offset": ("a", "b", "c"),
    PER_RESOLUTION: ("a", "c_r"),
}


@dataclass(frozen=True)
class Calibration:
    form: str = "sum"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    offsets: tuple[tuple[int, float], ...] = ()  # (resolution, offset ms) of the per-resolution form
    _by_resolution: dict[int, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_resolution", dict(self.offsets))  # apply runs inside the search loop

    def apply(self, raw_ms: float, n_layers: int, resolution: int | None = None) -> float:
        offset = self.c
        if self._by_resolution:
            if resolution not in self._by_resolution:
                raise ValueError(f"calibration has offsets for resolutions {sorted(self._by_resolution)}, "
                                 f"not {resolution}")
            offset = self._by_resolution[resolution]
        return self.a * raw_ms + self.b * n_layers + offset

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"form": self.form, "a": self.a, "b": self.b, "c": self.c}
        if self.offsets:
            data["offsets"] = {str(r): c for r, c in self.offsets}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        offsets = tuple(sorted((int(r), float(c)) for r, c in data.get("offsets", {}).items()))
        return cls(str(data["form"]), float(data["a"]), float(data["b"]), float(data["c"]), offsets)


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
             resolutions: Sequence[int] | None = None) -> Calibration:
    """Least squares on relative residuals (rows scaled by 1/measured)."""
    if form == "sum":
        return Calibration("sum")
    x, n, y = (np.asarray(v, dtype=float) for v in (raw, n_layers, measured))
    names, design = _design(form, x, n, None if resolutions is None else np.asarray(resolutions, dtype=int))
    coef, *_ = np.linalg.lstsq(design / y[:, None], np.ones_like(y), rcond=None)
    values = dict(zip(names, (float(v) for v in coef), strict=True))
    offsets = tuple((int(name[2:]), v) for name, v in values.items() if name.startswith("c@"))
    return Calibration(form, values.get("a", 1.0), values.get("b", 0.0), values.get("c", 0.0), offsets)


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


def _sum_share(fit: Calibration, raw: Sequence[float], measured: Sequence[float]) -> float:
    return float(np.mean(fit.a * np.asarray(raw, dtype=float) / np.asarray(measured, dtype=float)))


def n_coefficients(form: str, resolutions: Sequence[int] | None) -> int:
    per_resolution = len(set(resolutions)) if resolutions is not None else 0
    return sum(per_resolution if name == "c_r" else 1 for name in FORMS[form])


def choose_calibration(raw: Sequence[float], n_layers: Sequence[int], measured: Sequence[float],
                       resolutions: Sequence[int] | None = None) -> tuple[Calibration, dict[str, float]]:
    """The form with the lowest leave-one-out MAPE, refitted on all fit children; and every form's score.

    A form is only tried when there are at least two more children than coefficients, so each
    leave-one-out fit is still overdetermined, and when its block-sum term `a * sum` still carries at least
    a quarter of the measured latency on average: a fit that predicts from the layer count or a constant
    alone hides a broken table (a mismeasured block) instead of correcting it. The per-resolution form
    needs each child's resolution, two resolutions or more (with one it is scale+offset), and two fit
    children of each, so that leaving one out still leaves its offset a child to fit on.
    """
    def eligible(form: str) -> bool:
        if form == PER_RESOLUTION:
            counts = Counter(resolutions or [])
            if len(counts) < 2 or min(counts.values()) < 2:
                return False
        if len(measured) < n_coefficients(form, resolutions) + 2:
            return False
        return form == "sum" or _sum_share(fit_form(form, raw, n_layers, measured, resolutions), raw,
                                           measured) >= 0.25

    scores = {form: leave_one_out_mape(form, raw, n_layers, measured, resolutions)
              for form in FORMS if eligible(form)}
    best = min(scores, key=lambda form: (round(scores[form], 3), n_coefficients(form, resolutions)))
    return fit_form(best, raw, n_layers, measured, resolutions), scores
