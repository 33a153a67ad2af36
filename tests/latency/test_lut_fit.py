import math

import numpy as np
import pytest

from supernet.latency import Fit, error_report, kendall_tau
from supernet.latency.build import choose_fit, fit_form


def test_kendall_tau_by_hand():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5-1)/6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1.0], [2.0]))


def test_kendall_tau_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 40).astype(float)
    y = x + rng.integers(0, 4, 40)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)


def test_error_report_numbers():
    report = error_report([104.0, 90.0, 200.0, 50.0], [100.0, 100.0, 200.0, 49.0])
    assert report["n"] == 4
    assert report["mape_pct"] == pytest.approx((4 + 10 + 0 + 100 / 49) / 4)
    assert report["within5_pct"] == pytest.approx(75.0)
    assert report["within10_pct"] == pytest.approx(100.0)
    assert report["max_error_pct"] == pytest.approx(10.0)


def test_fit_recovers_known_coefficients_and_choice():
    raw = [1.0, 2.0, 3.5, 4.0, 6.0, 7.5]
    layers = [8, 10, 9, 14, 12, 16]
    measured = [1.1 * r + 0.02 * n + 0.3 for r, n in zip(raw, layers, strict=True)]
    fit = fit_form("scale+per_layer+offset", raw, layers, measured)
    assert (fit.a, fit.b, fit.c) == pytest.approx((1.1, 0.02, 0.3))
    chosen, scores = choose_fit(raw, layers, measured)
    assert chosen.form == "scale+per_layer+offset"
    assert scores["scale+per_layer+offset"] == pytest.approx(0.0, abs=1e-9)
    assert scores["sum"] > 10.0


def test_a_simpler_form_wins_a_tie():
    raw = [1.0, 2.0, 3.0, 5.0, 8.0]
    chosen, _ = choose_fit(raw, [5, 9, 4, 7, 6], [1.3 * r for r in raw])
    assert chosen.form == "scale"
    assert chosen.apply(10.0, 3) == pytest.approx(13.0)
    assert Fit.from_json(chosen.to_json()) == chosen


def test_an_offset_per_resolution_is_fitted_and_chosen_when_it_explains_the_children():
    raw = [1.0, 2.0, 3.5, 4.0, 6.0, 7.5, 2.5, 5.0]
    layers = [8, 10, 9, 14, 12, 16, 9, 11]
    resolutions = [24, 28, 24, 28, 24, 28, 24, 28]
    offsets = {24: 0.1, 28: 0.4}  # a larger input costs more beyond its blocks
    measured = [0.9 * r + offsets[res] for r, res in zip(raw, resolutions, strict=True)]
    chosen, scores = choose_fit(raw, layers, measured, resolutions)
    assert chosen.form == "scale+offset_per_resolution"
    assert scores["scale+offset_per_resolution"] == pytest.approx(0.0, abs=1e-9)
    assert chosen.a == pytest.approx(0.9) and dict(chosen.offsets) == pytest.approx(offsets)
    assert chosen.apply(10.0, 3, 28) == pytest.approx(9.4)
    with pytest.raises(ValueError, match=r"offsets for resolutions \[24, 28\], not 32"):
        chosen.apply(10.0, 3, 32)
    assert Fit.from_json(chosen.to_json()) == chosen

    # without resolutions, with one only, or with a resolution seen once, the form is not tried
    for res in (None, [24] * 8, [24] * 7 + [28]):
        _, scores = choose_fit(raw, layers, measured, res)
        assert "scale+offset_per_resolution" not in scores and "scale+offset" in scores


def test_a_fit_that_ignores_the_block_sum_is_not_chosen():
    # the sums carry no information (one block mismeasured 100x); the layer count explains everything
    raw = [1.0, 1.1, 100.0, 0.9, 1.2, 1.0, 0.95]
    layers = [8, 10, 9, 14, 12, 16, 11]
    measured = [0.1 * n for n in layers]
    chosen, scores = choose_fit(raw, layers, measured)
    assert "scale+per_layer+offset" not in scores and chosen.a > 0
