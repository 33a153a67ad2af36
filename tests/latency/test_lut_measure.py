import numpy as np
import pytest
import torch
from torch import nn

from supernet.latency import LatencySettingsError, Measurer, MeasureSettings, measure_child_latency
from supernet.latency import measure as measure_module
from supernet.latency.reference import smallest_child_plan
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
                       ({"repeats": 0}, "repeats must be"),
                       ({"paired": "yes"}, "paired must be true or false"),
                       ({"reference": "resnet"}, "reference 'resnet' is not one of")):
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


class _Machine:
    """A perf_counter whose time passes only while a `Busy` module runs, at the machine's present speed."""

    def __init__(self):
        self.now = 0.0
        self.speed = 1.0

    def __call__(self) -> float:
        return self.now


class Busy(nn.Module):
    """Runs `ms` milliseconds at speed 1; a module that opens a pair can first move the machine to a new
    phase (`phases`: the speeds it cycles through), which then lasts for the whole pair."""

    def __init__(self, machine: _Machine, ms: float, phases: tuple[float, ...] = ()):
        super().__init__()
        self.machine, self.ms, self.phases, self.calls = machine, ms, phases, 0

    def forward(self, x):
        if self.phases:
            self.machine.speed = self.phases[self.calls % len(self.phases)]
        self.calls += 1
        self.machine.now += self.ms * self.machine.speed / 1e3
        return x


@pytest.mark.parametrize("statistic", ["median", "min"])
def test_paired_timing_cancels_the_speed_of_the_moment(monkeypatch, statistic):
    machine = _Machine()
    monkeypatch.setattr(measure_module.time, "perf_counter", machine)
    # the machine changes speed from one pair of calls to the next, as a shared VM does
    phases = (1.0, 1.3, 2.0, 1.1, 1.6)
    monkeypatch.setattr(measure_module, "reference_network", lambda: Busy(machine, 0.5, phases))
    x = torch.zeros(1)
    cases = [(Busy(machine, 1.0), x), (Busy(machine, 3.0), x)]
    settings = dict(target="cpu", threads=1, repeats=10, warmup=1, rounds=2, statistic=statistic,
                    reference="fixed_network")

    with Measurer(MeasureSettings(**settings, paired=True)) as measurer:
        first = measurer.time_cases(cases)
        # the reference's own latency is the unit: its statistic over the samples after the settling pass
        reference = np.percentile([0.5 * s for s in phases] * 4, percentile_of(statistic))
        assert measurer.unit_ms == pytest.approx(reference)
        assert first == pytest.approx([reference * 2.0, reference * 6.0])  # 1 and 3 ms = 2 and 6 references
        phases_now = tuple(2 * s for s in phases)  # twice as slow: the unit stays, so do the values
        measurer._reference[0].phases = phases_now
        mark = measurer.reference_count()
        assert mark == 20  # 2 cases x 10 repeats
        assert measurer.time_cases(cases) == pytest.approx(first)
        # what the reference runs in now shows in its own latency: over both timings, or since the mark
        q = percentile_of(statistic)
        both = [0.5 * s for s in phases + phases_now] * 4
        assert measurer.reference_ms() == pytest.approx(np.percentile(both, q))
        assert measurer.reference_ms(since=mark) == pytest.approx(2 * reference)

    machine.speed = 1.0
    with Measurer(MeasureSettings(**settings, paired=False)) as measurer:
        plain = measurer.time_cases(cases)
        machine.speed = 2.0
        assert measurer.time_cases(cases) == pytest.approx([2 * v for v in plain])  # unpaired: it follows


def test_a_measurer_can_be_told_its_unit(monkeypatch):
    machine = _Machine()
    monkeypatch.setattr(measure_module.time, "perf_counter", machine)
    monkeypatch.setattr(measure_module, "reference_network", lambda: Busy(machine, 0.5))
    settings = MeasureSettings(target="cpu", threads=1, repeats=4, warmup=0, rounds=1, paired=True,
                               reference="fixed_network")
    with Measurer(settings) as measurer:
        measurer.unit_ms = 0.25  # say, a table's: values are counted in it, whatever the reference runs now
        assert measurer.time_cases([(Busy(machine, 1.5), torch.zeros(1))]) == pytest.approx([0.75])
        assert measurer.unit_ms == 0.25 and measurer.reference_ms() == pytest.approx(0.5)
        measurer.pair_with([])  # after timing: harmless, the fixed network is the reference whatever the plan


def test_paired_timing_of_real_modules_orders_them_by_cost(tiny_space):
    settings = MeasureSettings(target="cpu", threads=1, repeats=12, warmup=2, rounds=2, paired=True)
    small, large = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 64, 3, padding=1)
    smallest = smallest_child_plan(tiny_space)
    with Measurer(settings) as measurer:
        cases = [measurer.case(small, 8, 32), measurer.case(large, 8, 32)]
        with pytest.raises(LatencySettingsError, match=r"call pair_with.*or set reference=fixed_network"):
            measurer.time_cases(cases)  # the space's smallest child is the default reference: which space?
        measurer.pair_with(smallest)
        ms_small, ms_large = measurer.time_cases(cases)
        assert measurer.unit_ms is not None and 0 < measurer.unit_ms < 100
        measurer.pair_with(smallest)  # the same reference again is fine, another one is not
        with pytest.raises(RuntimeError, match="already timed against another reference"):
            measurer.pair_with(tiny_space.layers(tiny_space.max()))
    assert 0 < ms_small < ms_large  # 8x the output channels: the ratio to the reference shows it

    # the reference really is that child: a case of the very same child is worth one unit
    with Measurer(settings) as measurer:
        measurer.pair_with(smallest)
        twin = measurer.case(build_child(smallest), smallest[0].cin, smallest[0].resolution)
        assert measurer.time_cases([twin])[0] == pytest.approx(measurer.unit_ms, rel=0.15)
