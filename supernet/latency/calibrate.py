"""From a sum of block latencies to a network latency: a small linear correction, chosen by held-out error.

A whole child differs from the sum of its blocks timed alone by a fixed cost per call (the outer module
call, the input hand-off) and a cost per block (each block timed alone pays its own call overhead and
finds its input and weights hot in cache). So the candidate corrections are

    sum                     measured ≈ sum
    scale                   measured ≈ a * sum
    scale+offset            measured ≈ a * sum + c
    scale+per_layer+offset  measured ≈ a * sum + b * n_layers + c

each fitted by least squares on relative error (every child weighs the same, small or large, which is
what MAPE scores), and the one with the lowest leave-one-out MAPE on the fit children is kept; a simpler
form wins a tie. Its error on children it never saw is stored beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# form -> the coefficients it fits, in order of growing freedom (a tie goes to the earlier form)
FORMS: dict[str, tuple[str, ...]] = {
    "sum": (),
    "scale": ("a",),
    "scale+offset": ("a", "c"),
    "scale+per_layer+offset": ("a", "b", "c"),
}


@dataclass(frozen=True)
class Calibration:
    form: str = "sum"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    def apply(self, raw_ms: float, n_layers: int) -> float:
        return self.a * raw_ms + self.b * n_layers + self.c

    def to_json(self) -> dict[str, Any]:
        return {"form": self.form, "a": self.a, "b": self.b, "c": self.c}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(str(data["form"]), float(data["a"]), float(data["b"]), float(data["c"]))


def _design(form: str, raw: np.ndarray, n_layers: np.ndarray) -> np.ndarray:
    columns = {"a": raw, "b": n_layers, "c": np.ones_like(raw)}
    return np.stack([columns[name] for name in FORMS[form]], axis=1)


def fit_form(form: str, raw: Sequence[float], n_layers: Sequence[int],
             measured: Sequence[float]) -> Calibration:
    """Least squares on relative residuals (rows scaled by 1/measured)."""
    if form == "sum":
        return Calibration("sum")
    x, n, y = (np.asarray(v, dtype=float) for v in (raw, n_layers, measured))
    design = _design(form, x, n) / y[:, None]
    coef, *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    values = dict(zip(FORMS[form], (float(v) for v in coef), strict=True))
    return Calibration(form, values.get("a", 1.0), values.get("b", 0.0), values.get("c", 0.0))


def leave_one_out_mape(form: str, raw: Sequence[float], n_layers: Sequence[int],
                       measured: Sequence[float]) -> float:
    """Mean absolute percent error of `form` predicting each child from a fit on all the others."""
    errors = []
    for i in range(len(measured)):
        rest = [j for j in range(len(measured)) if j != i]
        fit = fit_form(form, [raw[j] for j in rest], [n_layers[j] for j in rest], [measured[j] for j in rest])
        errors.append(abs(fit.apply(raw[i], n_layers[i]) - measured[i]) / measured[i] * 100.0)
    return float(np.mean(errors))


def _sum_share(fit: Calibration, raw: Sequence[float], measured: Sequence[float]) -> float:
    return float(np.mean(fit.a * np.asarray(raw, dtype=float) / np.asarray(measured, dtype=float)))


def choose_calibration(raw: Sequence[float], n_layers: Sequence[int],
                       measured: Sequence[float]) -> tuple[Calibration, dict[str, float]]:
    """The form with the lowest leave-one-out MAPE, refitted on all fit children; and every form's score.

    A form is only tried when there are at least two more children than coefficients, so each
    leave-one-out fit is still overdetermined, and when its block-sum term `a * sum` still carries at least
    a quarter of the measured latency on average: a fit that predicts from the layer count or a constant
    alone hides a broken table (a mismeasured block) instead of correcting it.
    """
    def eligible(form: str) -> bool:
        if len(measured) < len(FORMS[form]) + 2:
            return False
        return form == "sum" or _sum_share(fit_form(form, raw, n_layers, measured), raw, measured) >= 0.25

    scores = {form: leave_one_out_mape(form, raw, n_layers, measured) for form in FORMS if eligible(form)}
    best = min(scores, key=lambda form: (round(scores[form], 3), len(FORMS[form])))
    return fit_form(best, raw, n_layers, measured), scores
