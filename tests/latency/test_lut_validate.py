import pytest
from lut_support import FakeMeasurer

from supernet.latency import DeviceMismatchError, build_table, measurer_for, settings_for, validate_table


@pytest.fixture
def table(tiny_space, tmp_path):
    return build_table(tiny_space, FakeMeasurer(), tmp_path / "t.json", progress=False)


def test_validation_times_fresh_children_in_every_sweep(table):
    measurer = FakeMeasurer()
    report = validate_table(table, measurer, children=10, progress=False)
    assert report["predicted"]["n"] == 10 and report["runtime"] == "onnxruntime"
    assert report["predicted"]["mape_pct"] < 0.01  # the stand-in's children are exactly affine in the sum
    assert report["raw_sum"]["mape_pct"] > 1.0
    fresh = {c["arch"] for c in report["children"]}
    assert len(fresh) == 10 and not fresh & {c["arch"] for c in table.fit_report["children"]}
    assert all(len(c["sweeps_ms"]) == measurer.cfg.sweeps for c in report["children"])


def test_validation_refuses_a_table_of_another_device(table):
    with pytest.raises(DeviceMismatchError, match=r"another cpu.*Predicting is allowed"):
        validate_table(table, FakeMeasurer(device="another cpu"), children=4, progress=False)


def test_the_validating_measurer_takes_the_tables_settings_and_unit(table, tiny_space):
    table.measure.update(statistic="min", paired=True, reference_ms=0.42)
    settings = settings_for(table, repeats=7)
    assert (settings.paired, settings.statistic, settings.repeats, settings.threads) == (True, "min", 7, 1)
    assert settings.resolved_runtime == "onnxruntime" and settings.graph_optimization == "all"
    measurer = measurer_for(table)
    assert measurer.unit_ms == 0.42 and measurer.cfg.summary_statistic == "median"
    assert measurer._reference_plan == tiny_space.layers(tiny_space.min())
