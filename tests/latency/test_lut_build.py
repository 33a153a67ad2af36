import json
from collections import Counter

import pytest
from lut_support import TINY_SPACE, FakeMeasurer

from supernet.latency import (
    LatencySettingsError,
    LatencyTable,
    LatencyTableError,
    build_table,
    partial_path,
    reachable_layers,
)
from supernet.space import SearchSpace


def _build(space, out, measurer, **kwargs):
    return build_table(space, measurer, out, progress=False, layers_per_group=8, children_per_group=4,
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
    sweeps = second.cfg.sweeps
    keys = [layer.key() for layer in reachable_layers(tiny_space)]
    assert first.layers + second.layers == Counter({k: sweeps for k in keys})  # once per sweep, no more
    both = first.children + second.children
    assert len(both) == 2 + 12 and set(both.values()) == {sweeps}  # max, min, 12 random children
    assert not partial_path(out).exists()

    uninterrupted = _build(tiny_space, tmp_path / "whole.json", FakeMeasurer())
    assert table.entries == uninterrupted.entries
    assert table.fit == uninterrupted.fit
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
    _build(tiny_space, out, Watching(save_every_s=5.0), clock=lambda: next(ticks))
    assert len(seen) == 24 and seen[0] == 0 and seen == sorted(seen)
    # saved after groups 2, 4, 6 ... (6 s after the last save), not after every group
    assert 0 < max(seen) < 180 and seen[1:5] == [0, 16, 16, 32] and len(set(seen)) == 12


def test_a_partial_build_from_another_device_or_settings_is_refused(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_space, out, FakeMeasurer(interrupt_after=3))
    with pytest.raises(LatencyTableError, match=rf"{partial_path(out)}.*another cpu.*delete it"):
        _build(tiny_space, out, FakeMeasurer(device="another cpu"))
    with pytest.raises(LatencyTableError, match=r"other settings \(paired=False then, True now, "
                                                r"statistic='median' then, 'min' now\).*delete it"):
        _build(tiny_space, out, FakeMeasurer(statistic="min", paired=True))
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
    # paired values are ratios; the reference ran 0.6 ms over the build, which is the table's unit
    paired = FakeMeasurer(paired=True)
    paired.reference_now_ms = 0.6
    table = _build(tiny_space, tmp_path / "paired.json", paired)
    assert paired.reference_plan == tiny_space.layers(tiny_space.min())
    assert table.measure["reference_ms"] == pytest.approx(0.6)
    assert table.entries == pytest.approx({k: 0.6 * v for k, v in plain.entries.items()})
    loaded = LatencyTable.load(tmp_path / "paired.json")
    assert loaded.predict(tiny_space.max()) == pytest.approx(0.6 * plain.predict(tiny_space.max()))


def test_a_resumed_paired_build_keeps_the_reference_times_of_its_first_part(tiny_space, tmp_path):
    out = tmp_path / "tiny.json"
    first = FakeMeasurer(interrupt_after=12, paired=True)  # the whole first sweep of blocks, at 0.5 ms
    first.reference_now_ms = 0.5
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_space, out, first)
    assert json.loads(partial_path(out).read_text())["reference_ms"] == [0.5] * 12
    second = FakeMeasurer(paired=True)
    second.reference_now_ms = 0.7  # the other 20 groups
    table = _build(tiny_space, out, second)
    assert table.measure["reference_ms"] == pytest.approx(0.7)  # the median over all 32 groups
