import builtins

import onnx
import pytest
import torch

from supernet.config import compose_config
from supernet.latency import (
    LatencyConfig,
    LatencySettingsError,
    Measurer,
    Runtime,
    latency_config,
    open_runtime,
)
from supernet.latency import measure as measure_module
from supernet.latency import runtimes as runtimes_module
from supernet.onnx_io import ONNX_OPSET

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _Calls(Runtime):
    """A runtime whose graphs are names: each call is recorded, nothing runs."""

    takes_onnx = False

    def __init__(self, cfg, calls):
        super().__init__(cfg)
        self.calls = calls

    def prepare(self, graph, input_shape):
        return lambda: self.calls.append(graph.name)

    def identity(self):
        return {"runtime": "calls"}


class _Named(torch.nn.Module):
    def __init__(self, name):
        super().__init__()
        self.name = name


def _measurer(monkeypatch, timestamps, calls, **settings):
    monkeypatch.setattr(measure_module, "open_runtime", lambda cfg: _Calls(cfg, calls))
    monkeypatch.setattr(measure_module.time, "perf_counter", iter(timestamps).__next__)
    return Measurer(latency_config(warmup=0, **settings))


def _cases(*names):
    return [(lambda n=n: _Named(n), 1, 8, None) for n in names]


def test_samples_are_interleaved_and_summarized_by_the_statistic(monkeypatch):
    # 2 things x 6 repeats in 3 rounds: a takes 1..6 ms, b 10..60 ms, in the order they run; before that,
    # a first pass that settles the process and is thrown away
    durations = [999] * 12 + [1, 2, 10, 20, 30, 40, 3, 4, 5, 6, 50, 60]
    stamps = [t for i, d in enumerate(durations) for t in (i, i + d / 1e3)]
    for statistic, expected in (("median", [3.5, 35.0]), ("min", [1.0, 10.0])):
        calls: list[str] = []
        measurer = _measurer(monkeypatch, stamps, calls, repeats=6, rounds=3, statistic=statistic)
        assert measurer.time_cases(_cases("a", "b")) == pytest.approx(expected)
        assert calls == list("aabbbbaaaabb") * 2  # round 2 runs backwards: a does not always follow b


def test_paired_timing_keeps_the_ratio_to_the_reference(monkeypatch, tiny_space):
    # each pair: the reference, then the thing; the machine runs at half speed in the second half
    pairs = [(1.0, 2.0)] * 4 + [(2.0, 4.0)] * 4
    stamps = []
    for i, (ref, mine) in enumerate(pairs * 2):  # settling pass, then the kept one
        stamps += [10 * i, 10 * i + ref / 1e3, 10 * i + (ref + mine) / 1e3]
    calls: list[str] = []
    measurer = _measurer(monkeypatch, stamps, calls, repeats=8, rounds=1, paired=True)
    monkeypatch.setattr(measure_module, "build_child", lambda plan: _Named("reference"))
    measurer.pair_with(tiny_space.layers(tiny_space.min()))
    assert measurer.time_cases(_cases("a")) == pytest.approx([2.0])  # a ratio: twice the reference
    assert measurer.reference_ms() == pytest.approx(1.5)
    assert calls[:2] == ["reference", "a"]
    measurer.unit_ms = 0.5
    monkeypatch.setattr(measure_module.time, "perf_counter", iter(stamps[24:]).__next__)
    assert measurer.time_cases(_cases("a")) == pytest.approx([1.0])  # in the table's unit: milliseconds


def test_onnxruntime_times_a_block_and_a_whole_child_as_export_writes_them(tiny_space):
    cfg = latency_config(threads=1, repeats=6, warmup=2, rounds=2)
    layer = tiny_space.layers(tiny_space.min())[2]
    with Measurer(cfg) as measurer:
        assert measurer.runtime.name == "onnxruntime" and measurer.runtime.takes_onnx
        [block_ms] = measurer.time_layers([layer])
        exported_s = measurer.export_s
        [again_ms] = measurer.time_layers([layer])
        assert measurer.export_s == exported_s  # exported once, kept by key for the next sweeps
        [child_ms] = measurer.time_children([tiny_space.layers(tiny_space.min())])
        fingerprint = measurer.fingerprint()
    assert 0 < block_ms < child_ms and again_ms > 0
    graph = onnx.load_from_string(measurer._graphs[layer.key()])
    assert graph.opset_import[0].version == ONNX_OPSET and graph.graph.input[0].name == "images"
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the dynamic batch axis of export
    assert fingerprint["runtime"] == "onnxruntime" and fingerprint["providers"] == ["CPUExecutionProvider"]
    assert fingerprint["runtime_version"] and fingerprint["threads"] == 1
    assert fingerprint["precision"] == "float32"
    assert fingerprint["graph_optimization"] == "all" and "memory_format" not in fingerprint


def test_a_group_s_graphs_are_exported_together_and_kept_for_the_next_measurer(tiny_space, tmp_path):
    """Two children, exported at once (forked workers where there are cores), land in `graph_dir`; a later
    measurer times them from there without exporting."""
    cfg = latency_config(threads=1, repeats=4, warmup=1, rounds=1)
    plans = [tiny_space.layers(tiny_space.min()), tiny_space.layers(tiny_space.max())]
    with Measurer(cfg, graph_dir=tmp_path) as first:
        first.time_children(plans)
    assert first.export_s > 0 and len(list(tmp_path.glob("*.onnx"))) == 2
    for plan in plans:
        graph = onnx.load_from_string(first._graph_file("|".join(layer.key() for layer in plan)).read_bytes())
        assert graph.graph.input[0].name == "images"
    with Measurer(cfg, graph_dir=tmp_path) as later:
        assert all(ms > 0 for ms in later.time_children(plans))
    assert later.export_s == 0


def test_the_torch_runtime_times_eager_modules_and_restores_threads(tiny_space):
    before = torch.get_num_threads()
    with Measurer(latency_config(runtime="torch", threads=1, repeats=4, warmup=1, rounds=1)) as measurer:
        assert torch.get_num_threads() == 1
        [ms] = measurer.time_children([tiny_space.layers(tiny_space.min())])
        fingerprint = measurer.fingerprint()
    assert torch.get_num_threads() == before and ms > 0 and measurer.export_s == 0
    assert fingerprint["runtime"] == "torch" and fingerprint["memory_format"] == "channels_last"


def test_every_default_is_written_once():
    assert latency_config(compose_config("lut")) == LatencyConfig() == latency_config()
    assert LatencyConfig().resolved_runtime == "onnxruntime"
    gpu = LatencyConfig(target="gpu")
    assert (gpu.resolved_runtime, gpu.resolved_precision) == ("tensorrt", "float16")


@pytest.mark.parametrize("values, message", [
    ({"threads": 0}, "latency.threads=0: must be at least 1"),
    ({"runtime": "openvino"}, "latency.runtime='openvino': choose one of"),
    ({"statistic": "mean"}, "statistic='mean': choose 'median', 'min'"),
    ({"repeats": "many"}, "repeats"),
    ({"fit": {"children": 1}}, "latency.fit.children=1: must be at least 2"),
])
def test_bad_settings_are_one_line_errors(values, message):
    with pytest.raises(LatencySettingsError, match=message.replace("(", r"\(")) as err:
        latency_config(values)
    assert "\n" not in str(err.value)


def test_a_missing_runtime_package_names_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(LatencySettingsError, match=r"^runtime=onnxruntime needs it: pip install onnxruntime$"
                       ):
        open_runtime(latency_config())


def test_gpu_runtimes_without_their_providers_name_what_to_install(monkeypatch):
    monkeypatch.setattr(runtimes_module.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CPUExecutionProvider"])
    trt = r"no TensorrtExecutionProvider: pip install 'supernet\[tensorrt\]'"
    with pytest.raises(LatencySettingsError, match=trt):
        open_runtime(latency_config(target="gpu"))
    with pytest.raises(LatencySettingsError, match="no CUDAExecutionProvider: pip install onnxruntime-gpu"):
        open_runtime(latency_config(target="gpu", runtime="onnxruntime"))
    with pytest.raises(LatencySettingsError, match="precision=float16: runtime=onnxruntime runs the export"):
        open_runtime(latency_config(precision="float16"))
    with pytest.raises(LatencySettingsError, match="runtime=tensorrt runs on --target gpu"):
        open_runtime(latency_config(runtime="tensorrt"))


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("runtime, precision", [("onnxruntime", "float32"), ("tensorrt", "float16"),
                                                ("torch", "float16")])
def test_gpu_runtimes_time_a_block_and_a_child(tiny_space, runtime, precision):
    cfg = latency_config(target="gpu", runtime=runtime, precision=precision, repeats=10, warmup=3, rounds=2)
    plan = tiny_space.layers(tiny_space.max())
    with Measurer(cfg) as measurer:
        block_ms, = measurer.time_layers([plan[3]])
        child_ms, = measurer.time_children([plan])
        fingerprint = measurer.fingerprint()
    assert 0 < block_ms < child_ms
    assert fingerprint["runtime"] == runtime and fingerprint["precision"] == precision
    assert fingerprint["threads"] is None and fingerprint["device"] == torch.cuda.get_device_name()
