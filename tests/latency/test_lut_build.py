import json
from collections import Counter
from dataclasses import replace

import pytest
from lut_support import TINY_SPACE, FakeMeasurer

from supernet.latency import (
    CalibrationPlan,
    LatencySettingsError,
    LatencyTable,
    LatencyTableError,
    build_table,
    reachable_layers,
)
from supernet.latency.build import partial_path
from supernet.space import SearchSpace

PLAN = CalibrationPlan(children=12)


def _build(space, out, measurer, **kwargs):
    return build_table(space, measurer, out, PLAN, progress=False, layers_per_group=8, children_per_group=4,
                       **kwargs)


# 90 blocks in groups of 8: calls 0-11 are sweep 1 over the blocks, 12-23 sweep 2; 14 children in groups of
# 4: calls 24-27 sweep 1, 28-31 sweep 2
@pytest.mark.parametrize("stop_at", [2, 17, 24, 30])
@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_build_resumes_measuring_nothing_twice(tiny_space, tmp_path, stop_at, error):
    out = tmp_path / "tiny.json"
    first = FakeMeasurer(interrupt_after=stop_at, error=error)
    with pytest.raises(error):
        _build(tiny_space, out, first)
    assert not out.exists()
    saved = json.loads(partial_path(out).read_text())
    assert sum(len(v) for v in saved["entries"].values()) == sum(first.layers.values())
    assert sum(len(v) for v in saved["children"].values()) == sum(first.children.values())

    second = FakeMeasurer()
    table = _build(tiny_space, out, second)
    sweeps = second.settings.sweeps
    assert sweeps == 2
    keys = [layer.key() for layer in reachable_layers(tiny_space)]
    assert first.layers + second.layers == Counter({k: sweeps for k in keys})  # once per sweep, no more
    both = first.children + second.children
    assert len(both) == 2 + 12 and set(both.values()) == {sweeps}  # max, min, 12 random children
    assert not partial_path(out).exists()

    uninterrupted = _build(tiny_space, tmp_path / "whole.json", FakeMeasurer())
    assert table.entries == uninterrupted.entries
    assert table.calibration == uninterrupted.calibration
    assert LatencyTable.load(out).entries == uninterrupted.entries


def test_progress_is_written_every_few_seconds(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    seen: list[int] = []

    class Watching(FakeMeasurer):
        def time_layers(self, layers):
            path = partial_path(out)
            saved = json.loads(path.read_text())["entries"] if path.exists() else {}
            seen.append(sum(len(v) for v in saved.values()))
            return super().time_layers(layers)

    ticks = iter(range(0, 10_000, 3))  # each clock reading is 3 s later: a save every other group
    _build(tiny_space, out, Watching(), save_every_s=5.0, clock=lambda: next(ticks))
    assert len(seen) == 24 and seen[0] == 0 and seen == sorted(seen)
    # saved after groups 1, 3, 5 ... (6 s, 12 s ... after the last save), not after every group
    assert 0 < max(seen) < 180 and seen[1:5] == [8, 8, 24, 24] and len(set(seen)) == 13


def test_a_partial_build_from_another_device_is_refused(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_space, out, FakeMeasurer(interrupt_after=3))
    with pytest.raises(LatencyTableError, match=rf"{partial_path(out)}.*another cpu.*delete it"):
        _build(tiny_space, out, FakeMeasurer(device="another cpu"))
    partial_path(out).write_text("{trunc")
    with pytest.raises(LatencyTableError, match=rf"{partial_path(out)} cannot be resumed"):
        _build(tiny_space, out, FakeMeasurer())


def test_a_space_too_small_to_hold_children_out_is_refused(tmp_path):
    single = {**TINY_SPACE, "resolutions": [16],
              "choices": {"kernel": [3], "expand": [2], "depth": [1], "width": [1.0]}}
    with pytest.raises(LatencySettingsError, match="space 'tiny' has 1 children: too few"):
        _build(SearchSpace.from_dict(single), tmp_path / "one.json", FakeMeasurer())


def test_a_paired_build_counts_in_the_reference_latency_of_the_whole_build(tiny_space, tmp_path):
    plain = _build(tiny_space, tmp_path / "plain.json", FakeMeasurer())
    assert "reference_ms" not in plain.measure

    # the stand-in's values were counted in a unit of 0.5 ms (the reference when timing began); over the
    # whole build the reference ran 0.6 ms: the table is rescaled to that, and says so
    paired = FakeMeasurer()
    paired.settings = replace(paired.settings, paired=True)
    paired.unit_ms, paired.reference_now_ms = 0.5, 0.6
    table = _build(tiny_space, tmp_path / "paired.json", paired)
    assert table.measure["reference_ms"] == pytest.approx(0.6)
    assert paired.unit_ms == pytest.approx(0.6)  # what it times next counts in the table's unit
    assert table.entries == pytest.approx({k: 1.2 * v for k, v in plain.entries.items()})
    loaded = LatencyTable.load(tmp_path / "paired.json")
    assert loaded.measure["reference_ms"] == pytest.approx(0.6)
    assert loaded.predict(tiny_space.max()) == pytest.approx(1.2 * plain.predict(tiny_space.max()))
    # paired against the space's smallest child, and the file says so, for whoever measures in its unit
    smallest = tiny_space.layers(tiny_space.min())
    assert paired.reference_plan == smallest and loaded.measure["reference"] == "smallest_child"
    assert loaded.reference_plan() == smallest and plain.reference_plan() is None


def test_a_resumed_paired_build_keeps_counting_in_its_first_unit(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    first = FakeMeasurer(interrupt_after=5)
    first.unit_ms = 0.5
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_space, out, first)
    assert json.loads(partial_path(out).read_text())["unit_ms"] == 0.5

    units_seen: list[float | None] = []

    class Recording(FakeMeasurer):
        def time_children(self, plans):
            units_seen.append(self.unit_ms)
            return super().time_children(plans)

    second = Recording()
    second.reference_now_ms = 0.55
    table = _build(tiny_space, out, second)
    # told before it timed anything, so old and new values share the unit; then the table's
    assert units_seen and set(units_seen) == {0.5}
    assert table.measure["reference_ms"] == pytest.approx(0.55) and second.unit_ms == pytest.approx(0.55)
    plain = _build(tiny_space, tmp_path / "plain.json", FakeMeasurer())
    assert table.entries == pytest.approx({k: 1.1 * v for k, v in plain.entries.items()})


def test_a_partial_build_measured_with_other_settings_is_refused(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_space, out, FakeMeasurer(interrupt_after=3))
    other = FakeMeasurer()
    other.settings = replace(other.settings, statistic="min", paired=True, reference="fixed_network")
    with pytest.raises(LatencyTableError, match=r"other settings \(paired=False then, True now, "
                                                r"reference='smallest_child' then, 'fixed_network' now, "
                                                r"statistic='median' then, 'min' now\).*delete it"):
        _build(tiny_space, out, other)
