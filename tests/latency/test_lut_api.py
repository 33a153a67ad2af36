import pytest
import torch
from lut_support import FakeMeasurer

import supernet.latency as latency
from supernet.latency import (
    LatencyTableError,
    MissingEntryError,
    TargetUnavailableError,
    build_table,
    get_table,
    latency_config,
    restrict_resolutions,
)

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")


def test_get_table_builds_once_then_loads_from_the_cache(tiny_space, tmp_path, monkeypatch):
    made: list[FakeMeasurer] = []

    def fake_measurer(cfg, graph_dir=None):
        made.append(FakeMeasurer())
        made[-1].cfg = cfg
        assert graph_dir == tmp_path / "graphs"  # exported graphs are kept beside the tables
        return made[-1]

    monkeypatch.setattr(latency, "Measurer", fake_measurer)
    cfg = latency_config(cache_dir=str(tmp_path), threads=1, fit={"children": 6})
    table = get_table(tiny_space, cfg, progress=False)
    assert table.path.parent == tmp_path and table.path.name.startswith("cpu-onnxruntime-")
    assert "-tiny-" in table.path.name and len(made) == 1 and made[0].calls > 0
    again = get_table(tiny_space, cfg)
    assert len(made) == 2 and made[1].calls == 0  # found in the cache: nothing measured
    assert again.entries == table.entries


def test_get_table_with_lut_file_checks_coverage_and_runtime_not_device(tiny_space, tmp_path):
    restricted = restrict_resolutions(tiny_space, [16])
    path = tmp_path / "other-device.json"
    build_table(restricted, FakeMeasurer(device="some far away cpu"), path, progress=False)
    table = get_table(restricted, latency_config(target="gpu"), lut_path=path)  # no GPU needed to predict
    assert table.predict(restricted.max()) > 0
    with pytest.raises(MissingEntryError, match=f"{path} does not cover space 'tiny'"):
        get_table(tiny_space, latency_config(), lut_path=path)
    with pytest.raises(LatencyTableError, match=f"{path} was measured in onnxruntime, not runtime=torch"):
        get_table(restricted, latency_config(runtime="torch"), lut_path=path)


@no_cuda
def test_gpu_target_without_cuda_says_where_to_build(tiny_space, tmp_path):
    with pytest.raises(TargetUnavailableError, match=r"supernet lut build --target gpu.*--lut FILE"):
        get_table(tiny_space, latency_config(target="gpu", cache_dir=str(tmp_path)))
