import pytest
import torch
from lut_support import FakeMeasurer

from supernet.latency import (
    CalibrationPlan,
    LatencyTable,
    Measurer,
    MeasureSettings,
    MissingEntryError,
    TargetUnavailableError,
    build_table,
    cached_table_path,
    get_table,
    measure_child_latency,
)
from supernet.latency import api as api_module
from supernet.latency.space_io import restrict_resolutions
from supernet.models.static import build_child

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")


def test_get_table_builds_once_then_loads_from_the_cache(tiny_space, tmp_path, monkeypatch):
    made: list[FakeMeasurer] = []

    def fake_measurer(settings):
        made.append(FakeMeasurer())
        return made[-1]

    monkeypatch.setattr(api_module, "Measurer", fake_measurer)
    table = get_table(tiny_space, "cpu", cache_dir=tmp_path, calibration=CalibrationPlan(children=6),
                      progress=False, threads=1)
    path = cached_table_path(tiny_space, MeasureSettings(target="cpu", threads=1), tmp_path)
    assert table.path == path and path.is_file() and path.name.startswith("cpu-")
    assert "-tiny-" in path.name
    assert len(made) == 1 and made[0].calls > 0
    again = get_table(tiny_space, "cpu", cache_dir=tmp_path, threads=1)
    assert len(made) == 1  # found in the cache: nothing measured
    assert again.entries == table.entries


def test_get_table_with_lut_file_checks_coverage_not_device(tiny_space, tmp_path):
    restricted = restrict_resolutions(tiny_space, [16])
    path = tmp_path / "other-device.json"
    build_table(restricted, FakeMeasurer(device="some far away gpu"), path, CalibrationPlan(children=6),
                progress=False)
    table = get_table(restricted, "gpu", lut_path=path)  # no GPU needed to predict from a file
    assert table.predict(restricted.max()) > 0
    with pytest.raises(MissingEntryError, match=f"{path} does not cover space 'tiny'"):
        get_table(tiny_space, "cpu", lut_path=path)


@no_cuda
def test_gpu_target_without_cuda_says_where_to_build(tiny_space, tmp_path):
    with pytest.raises(TargetUnavailableError, match=r"supernet lut build --target gpu.*--lut FILE"):
        get_table(tiny_space, "gpu", cache_dir=tmp_path)


def test_prediction_is_close_to_end_to_end_measurement(tiny_space, tmp_path):
    """A real CPU build of the tiny space: max and min child within 20 % of their measured latency.

    One thread, paired timing, and the child measured in the table's unit: the test must hold on a CPU busy
    with other tests, whose speed changes from one moment to the next.
    """
    settings = MeasureSettings(target="cpu", threads=1, repeats=24, warmup=3, rounds=3, statistic="min",
                               paired=True)
    with Measurer(settings) as measurer:
        table = build_table(tiny_space, measurer, tmp_path / "real.json", CalibrationPlan(children=6),
                            progress=False)
    assert isinstance(LatencyTable.load(tmp_path / "real.json"), LatencyTable)
    unit_ms, reference = table.measure["reference_ms"], table.reference_plan()
    assert reference == tiny_space.layers(tiny_space.min())
    for arch in (tiny_space.max(), tiny_space.min()):
        model = build_child(tiny_space.layers(arch))
        measured = measure_child_latency(model, arch.resolution, "cpu", threads=1, repeats=40, warmup=5,
                                         statistic="min", paired=True, unit_ms=unit_ms,
                                         reference=reference)
        assert table.predict(arch) == pytest.approx(measured, rel=0.20), str(arch)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_build_records_cuda_and_predicts_close_to_measurement(tiny_space, tmp_path):
    settings = MeasureSettings(target="gpu", repeats=30, warmup=5, rounds=3)
    with Measurer(settings) as measurer:
        table = build_table(tiny_space, measurer, tmp_path / "gpu.json", CalibrationPlan(children=6),
                            progress=False)
    fingerprint = table.fingerprint
    assert fingerprint["target"] == "gpu" and fingerprint["cuda"] == torch.version.cuda
    assert fingerprint["cudnn_benchmark"] is True and fingerprint["threads"] is None
    arch = tiny_space.max()
    measured = measure_child_latency(build_child(tiny_space.layers(arch)), arch.resolution, "gpu", repeats=50)
    assert table.predict(arch) == pytest.approx(measured, rel=0.30)
