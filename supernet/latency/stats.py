"""How well predicted latencies match measured ones: MAPE, share within ±5 % / ±10 %, Kendall tau."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
    concordant_minus_discordant = float(np.sum(da * db))
    untied_a, untied_b = float(np.count_nonzero(da)), float(np.count_nonzero(db))
    if untied_a == 0 or untied_b == 0:
        return math.nan
    return concordant_minus_discordant / math.sqrt(untied_a * untied_b)


def error_report(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Relative errors of `predicted` against `measured` (both in ms), in percent, plus rank agreement."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.size == 0 or p.shape != m.shape:
        raise ValueError(f"error_report: need equal, non-empty sequences, got {p.size} and {m.size}")
    rel = np.abs(p - m) / m * 100.0
    return {
        "n": int(p.size),
        "mape_pct": float(rel.mean()),
        "within5_pct": float((rel <= 5.0).mean() * 100.0),
        "within10_pct": float((rel <= 10.0).mean() * 100.0),
        "max_error_pct": float(rel.max()),
        "kendall_tau": kendall_tau(p, m),
    }
