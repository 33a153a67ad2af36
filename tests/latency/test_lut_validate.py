from dataclasses import replace

import pytest
from lut_support import FakeMeasurer

from supernet.latency import CalibrationPlan, build_table, validate_table
from supernet.latency.validate import interleave, measurer_for, spread_over_latency
from supernet.space import Arch


def test_validation_tells_device_drift_from_table_error(tiny_space, tmp_path):
    measurer = FakeMeasurer()
    table = build_table(tiny_space, measurer, tmp_path / "t.json", CalibrationPlan(children=12),
                        progress=False)
    steady = validate_table(table, measurer, children=10, progress=False)
    assert steady["drift"]["anchors"] == 8 and steady["drift"]["ratio"] == pytest.approx(1.0)
    assert steady["calibrated"]["mape_pct"] < 0.01  # the stand-in's children are exactly affine in the sum

    measurer.slowdown = 1.04  # the whole device now runs 4 % slower than when the table was built
    slower = validate_table(table, measurer, children=10, progress=False)
    assert slower["drift"]["pct"] == pytest.approx(4.0)
    assert slower["calibrated"]["mape_pct"] == pytest.approx(100 * 0.04 / 1.04, abs=0.01)  # kept in
    assert slower["drift"]["calibrated_without_drift"]["mape_pct"] < 0.01
    fresh = {c["arch"] for c in slower["children"]}
    assert not fresh & {c["arch"] for c in table.calibration_report["children"]}


class SlowerSecondSweep(FakeMeasurer):
    """Times whole children 3 % slower from its `from_call`-th call on (the second sweep, below)."""

    def __init__(self, from_call: int):
        super().__init__()
        self.from_call = from_call

    def time_children(self, plans):
        self.slowdown = 1.03 if self.calls >= self.from_call else 1.0
        return super().time_children(plans)


def test_repeatability_compares_the_device_with_itself(tiny_space, tmp_path):
    table = build_table(tiny_space, FakeMeasurer(), tmp_path / "t.json", CalibrationPlan(children=12),
                        progress=False)
    # 10 fresh children and 8 anchors in groups of 6: three calls a sweep, the second sweep from call 3.
    measurer = SlowerSecondSweep(from_call=3)
    report = validate_table(table, measurer, children=10, progress=False, group=6)
    assert measurer.settings.sweeps == 2 and measurer.calls == 6
    assert report["repeatability"]["n"] == 10
    assert report["repeatability"]["mape_pct"] == pytest.approx(3.0)
    assert report["repeatability"]["kendall_tau"] == pytest.approx(1.0)
    # The combined measurement (the median of two sweeps) runs 1.5 % slow: drift, not table error.
    assert report["drift"]["pct"] == pytest.approx(1.5)
    assert report["drift"]["calibrated_without_drift"]["mape_pct"] < 0.01

    one_sweep = FakeMeasurer()
    one_sweep.settings = replace(one_sweep.settings, sweeps=1)
    assert validate_table(table, one_sweep, children=10, progress=False)["repeatability"] is None


class SlowerOddSweeps(FakeMeasurer):
    """Times whole children 3 % slower in every second sweep of `calls_per_sweep` calls."""

    def __init__(self, calls_per_sweep: int, sweeps: int):
        super().__init__()
        self.calls_per_sweep = calls_per_sweep
        self.settings = replace(self.settings, sweeps=sweeps)

    def time_children(self, plans):
        self.slowdown = 1.03 if (self.calls // self.calls_per_sweep) % 2 else 1.0
        return super().time_children(plans)


def test_repeatability_splits_the_sweeps_in_two_interleaved_halves(tiny_space, tmp_path):
    table = build_table(tiny_space, FakeMeasurer(), tmp_path / "t.json", CalibrationPlan(children=12),
                        progress=False)
    measurer = SlowerOddSweeps(calls_per_sweep=3, sweeps=4)
    report = validate_table(table, measurer, children=10, progress=False, group=6)
    assert measurer.calls == 12
    # sweeps 1 and 3 against sweeps 0 and 2: 3 % apart, in the same order
    assert report["repeatability"]["mape_pct"] == pytest.approx(3.0)
    assert report["repeatability"]["kendall_tau"] == pytest.approx(1.0)
    for child in report["children"]:
        fast, slow = child["measured_ms"] / 1.015, child["measured_ms"] * 1.03 / 1.015
        assert child["sweeps_ms"] == pytest.approx([fast, slow, fast, slow])


def test_anchors_span_the_latency_range_and_are_spread_through_the_list():
    archs = [Arch.parse(f"r{r}-w1:k3e2") for r in (16, 20, 24, 28, 32)]
    latency = dict(zip(archs, [5.0, 1.0, 4.0, 2.0, 3.0], strict=True))
    assert spread_over_latency(latency, 3) == [archs[1], archs[4], archs[0]]
    assert spread_over_latency(latency, 10) == sorted(archs, key=latency.__getitem__)
    assert spread_over_latency({}, 8) == [] and spread_over_latency(latency, 0) == []
    # one anchor in the middle of each half of the list, none at its ends
    assert interleave(list("abcdef"), list("XY")) == list("abXcdYef")
    assert interleave(list("abcd"), []) == list("abcd")


def test_a_paired_table_is_validated_in_its_own_unit(tiny_space, tmp_path):
    builder = FakeMeasurer()
    builder.unit_ms = builder.reference_now_ms = 0.5
    table = build_table(tiny_space, builder, tmp_path / "t.json", CalibrationPlan(children=12),
                        progress=False)

    # Now the reference runs 10 % slower. Counted in the table's unit the children match the table exactly;
    # in milliseconds of this moment they are 10 % slower than predicted.
    checker = FakeMeasurer()
    checker.unit_ms, checker.reference_now_ms = table.measure["reference_ms"], 0.55
    report = validate_table(table, checker, children=10, progress=False)
    assert report["calibrated"]["mape_pct"] < 0.01
    speed = report["device_speed"]
    assert speed["reference_ms_table"] == 0.5 and speed["pct"] == pytest.approx(10.0)
    assert speed["calibrated_at_current_speed"]["mape_pct"] == pytest.approx(100 * 0.1 / 1.1, abs=0.01)
    assert validate_table(table, FakeMeasurer(), children=10, progress=False)["device_speed"] is None


def test_the_validating_measurer_takes_the_tables_settings_and_unit(tiny_space, tmp_path):
    table = build_table(tiny_space, FakeMeasurer(), tmp_path / "t.json", CalibrationPlan(children=12),
                        progress=False)
    table.measure.update(statistic="min", paired=True, reference_ms=0.42)
    measurer = measurer_for(table, repeats=7)
    assert measurer.unit_ms == 0.42
    settings = measurer.settings
    assert (settings.paired, settings.statistic, settings.repeats) == (True, "min", 7)
    assert measurer.settings.summary_statistic == "median"  # a ratio's noise is symmetric
    assert settings.reference == "smallest_child"
    assert measurer._reference_plan == tiny_space.layers(tiny_space.min())

    # a table paired before the space's smallest child became the reference is checked against its own
    del table.measure["reference"]
    assert measurer_for(table).settings.reference == "fixed_network"
