import pytest
import torch
from torch import nn

from supernet.latency import LatencySettingsError, Measurer, MeasureSettings, measure_child_latency
from supernet.latency import measure as measure_module
from supernet.latency.settings import percentile_of
from supernet.models.static import build_child


class _Clock:
    """perf_counter stand-in: call k of a timed pair lasts durations[k] ms."""

    def __init__(self, durations_ms):
        self.durations = iter(durations_ms)
        self.now = 0.0
        self.starting = True

    def __call__(self) -> float:
        if not self.starting:
            self.now += next(self.durations) / 1e3
        self.starting = not self.starting
        return self.now


def test_samples_are_interleaved_and_summarized_by_the_statistic(monkeypatch):
    calls: list[str] = []

    class Named(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    # 2 modules x 6 repeats in 3 rounds: a gets 1..6 ms, b gets 10..60 ms, in the order they run; before
    # that, a first pass that settles the process and is thrown away
    durations = [999] * 12 + [1, 2, 10, 20, 30, 40, 3, 4, 5, 6, 50, 60]
    monkeypatch.setattr(measure_module.time, "perf_counter", _Clock(durations))
    settings = MeasureSettings(target="cpu", threads=1, repeats=6, warmup=0, rounds=3)
    with Measurer(settings) as measurer:
        cases = [(Named("a"), torch.zeros(1)), (Named("b"), torch.zeros(1))]
        medians = measurer.time_cases(cases)
    assert calls == list("aabbbbaaaabb") * 2  # round 2 runs backwards: a does not always follow b
    assert medians == pytest.approx([3.5, 35.0])

    monkeypatch.setattr(measure_module.time, "perf_counter", _Clock(durations))
    low = MeasureSettings(target="cpu", threads=1, repeats=6, warmup=0, rounds=3, statistic="min")
    with Measurer(low) as measurer:
        assert measurer.time_cases(cases) == pytest.approx([1.0, 10.0])


def test_statistic_and_settings_are_validated():
    assert [percentile_of(s) for s in ("median", "min", "p10")] == [50.0, 0.0, 10.0]
    for bad, match in (({"statistic": "mean"}, "statistic 'mean'"), ({"dtype": "float64"}, "dtype 'float64'"),
                       ({"threads": 0}, "threads must be"), ({"target": "tpu"}, "target 'tpu'"),
                       ({"repeats": 0}, "repeats must be")):
        with pytest.raises(LatencySettingsError, match=match):
            MeasureSettings(**bad)


def test_measurer_sets_and_restores_threads():
    before = torch.get_num_threads()
    with Measurer(MeasureSettings(target="cpu", threads=1)):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_measure_child_latency_leaves_the_model_alone(tiny_space):
    model = build_child(tiny_space.layers(tiny_space.min()))
    ms = measure_child_latency(model, 16, "cpu", threads=1, repeats=4, warmup=1, rounds=2)
    assert 0 < ms < 1000
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous() and model.training  # the copy was converted, not the caller's model


def test_layers_run_in_the_deployment_format(tiny_space):
    layer = next(layer for layer in tiny_space.layers(tiny_space.max()) if layer.kind == "mbconv")
    settings = MeasureSettings(target="cpu", threads=1, repeats=1, warmup=0, rounds=1, dtype="bfloat16")
    with Measurer(settings) as measurer:
        module, x = measurer.case(nn.Conv2d(layer.cin, 8, 3), layer.cin, layer.resolution)
        assert len(measurer.time_layers([layer])) == 1
    assert x.dtype == torch.bfloat16 and tuple(x.shape) == (1, layer.cin, layer.resolution, layer.resolution)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert module.weight.dtype == torch.bfloat16 and not module.training
    assert module.weight.is_contiguous(memory_format=torch.channels_last)
