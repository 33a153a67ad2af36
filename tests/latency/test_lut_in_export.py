"""The export card times the written model.onnx, as the table its prediction came from was timed."""

import json

import torch
from lut_support import FakeMeasurer

from supernet.export.latency import measure
from supernet.latency import LatencyTable, build_table
from supernet.models.static import build_child
from supernet.onnx_io import write_onnx


def _written(model, resolution, folder):
    path = folder / "model.onnx"
    write_onnx(model.eval(), torch.randn(2, 1, resolution, resolution), path)
    return path


def test_a_table_of_this_machine_times_the_written_onnx_file_as_it_was_timed(built_table, tmp_path):
    path, _ = built_table
    table = LatencyTable.load(path)
    arch = table.space.max()
    model = build_child(table.space.layers(arch)).train()
    onnx_file = _written(model, arch.resolution, tmp_path)
    model.train()
    ms, how = measure(model, arch.resolution, "cpu", 1, lut=path, onnx_file=onnx_file)
    assert how.startswith("the written model.onnx on cpu") and "onnxruntime" in how
    assert how.endswith(f"as latency table {path} was timed")
    assert 0.5 < ms / table.predict(arch) < 2.0  # a loose bound: the CPU is shared with other tests
    assert model.training  # the caller's model is left alone


def test_without_a_usable_table_the_file_is_timed_with_the_defaults_and_says_why(tiny_space, tmp_path):
    arch = tiny_space.min()
    model = build_child(tiny_space.layers(arch))
    onnx_file = _written(model, arch.resolution, tmp_path)
    ms, how = measure(model, arch.resolution, "cpu", 1, onnx_file=onnx_file)
    assert ms > 0 and how.startswith("the written model.onnx on cpu") and "onnxruntime" in how
    assert "median of 100 calls after 10 warm-up calls" in how and how.endswith("none was given)")

    elsewhere = tmp_path / "elsewhere.json"
    build_table(tiny_space, FakeMeasurer(device="a far away cpu"), elsewhere, progress=False)
    _, how = measure(model, arch.resolution, "cpu", 1, lut=elsewhere, onnx_file=onnx_file)
    assert "not as a latency table was timed" in how and "a far away cpu" in how

    data = json.loads(elsewhere.read_text())
    data["fingerprint"]["target"] = "gpu"
    (tmp_path / "gpu.json").write_text(json.dumps(data))
    _, how = measure(model, arch.resolution, "cpu", 1, lut=tmp_path / "gpu.json", onnx_file=onnx_file)
    assert "does not match its digest" in how

    _, how = measure(model, arch.resolution, "cpu", 1, onnx_file=None)  # no model.onnx written: the child
    assert how.startswith("the child in onnxruntime on cpu")
