"""An exported child is timed as the table its predicted latency came from was timed, where that can be."""

import json

from lut_support import FakeMeasurer

from supernet.export.latency import measure
from supernet.latency import CalibrationPlan, Measurer, MeasureSettings, build_table
from supernet.models.static import build_child


def test_a_table_of_this_machine_times_the_export_as_it_was_timed(tiny_space, tmp_path):
    settings = MeasureSettings(target="cpu", threads=1, repeats=12, warmup=2, rounds=2, sweeps=1,
                               statistic="min", paired=True)
    path = tmp_path / "here.json"
    with Measurer(settings) as measurer:
        table = build_table(tiny_space, measurer, path, CalibrationPlan(children=4), progress=False)
    arch = tiny_space.max()
    model = build_child(tiny_space.layers(arch)).train()
    ms, how = measure(model, arch.resolution, "cpu", tiny_space.spec.in_channels, lut=path)
    assert how == f"as latency table {path} was timed, paired, counted in its unit"
    # the same unit as the prediction: a loose bound, the CPU is shared with other tests
    assert 0.5 < ms / table.predict(arch) < 2.0
    assert model.training  # the caller's model is left alone (a copy was timed, in eval mode)


def test_without_a_usable_table_the_export_is_timed_by_stopwatch_and_says_why(tiny_space, tmp_path):
    arch = tiny_space.min()
    model = build_child(tiny_space.layers(arch))
    ms, how = measure(model, arch.resolution, "cpu", tiny_space.spec.in_channels)
    assert ms > 0 and how.startswith("stopwatch: median of 60 calls") and how.endswith("none was given)")

    elsewhere = tmp_path / "elsewhere.json"
    build_table(tiny_space, FakeMeasurer(device="a far away cpu"), elsewhere, CalibrationPlan(children=4),
                progress=False)
    _, how = measure(model, arch.resolution, "cpu", tiny_space.spec.in_channels, lut=elsewhere)
    assert how.startswith("stopwatch") and "a far away cpu" in how

    data = json.loads(elsewhere.read_text())
    data["fingerprint"]["target"] = "gpu"
    (tmp_path / "gpu.json").write_text(json.dumps(data))
    _, how = measure(model, arch.resolution, "cpu", tiny_space.spec.in_channels, lut=tmp_path / "gpu.json")
    assert "is a gpu table, the target is cpu" in how

    (tmp_path / "broken.json").write_text("{")
    _, how = measure(model, arch.resolution, "cpu", tiny_space.spec.in_channels, lut=tmp_path / "broken.json")
    assert how.startswith("stopwatch") and "broken.json" in how

