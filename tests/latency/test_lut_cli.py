import json

import pytest
import torch
from typer.testing import CliRunner

from supernet_cli.main import app

runner = CliRunner()


def test_build_writes_a_table_of_its_runtime_that_shows(built_table):
    out, output = built_table
    assert f"wrote {out}" in output
    shown = runner.invoke(app, ["lut", "show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "10 blocks of space small-" in shown.output and "predicted latency" in shown.output
    assert "onnxruntime" in shown.output
    summary = json.loads(runner.invoke(app, ["lut", "show", str(out), "--json"]).output)
    assert summary["entries"] == 10 and summary["resolutions"] == [24]
    fingerprint = summary["fingerprint"]
    assert fingerprint["runtime"] == "onnxruntime" and fingerprint["threads"] == 1
    assert fingerprint["providers"] == ["CPUExecutionProvider"] and fingerprint["precision"] == "float32"
    assert summary["measure"]["statistic"] == "min" and summary["measure"]["paired"] is False
    assert summary["fit"]["held_out"]["n"] == 1 and summary["predicted_ms"]["max"]["predicted"] > 0
    meta = json.loads(out.read_text())["meta"]
    assert 0 < meta["export_s"] < meta["build_s"]
    assert len(list((out.parent / "graphs").glob("*.onnx"))) == 10 + 5  # blocks and fit children, kept


def test_validate_measures_fresh_children_in_the_tables_runtime(built_table):
    out, _ = built_table
    result = runner.invoke(app, ["lut", "validate", str(out), "--children", "2", "--repeats", "4",
                                 "--sweeps", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["predicted"]["n"] == 2 and report["runtime"] == "onnxruntime"
    # a loose bound: the CPU is shared with other tests
    assert report["predicted"]["mape_pct"] < 50


def test_validate_refuses_a_table_from_another_device(built_table, tmp_path):
    out, _ = built_table
    data = json.loads(out.read_text())
    data["fingerprint"]["device"] = "a different cpu"
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(data))
    result = runner.invoke(app, ["lut", "validate", str(moved), "--children", "2"])
    assert result.exit_code == 2 and "does not match its digest" in result.output  # edited by hand


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_gpu_target_without_cuda_exits_2_with_the_way_out():
    result = runner.invoke(app, ["lut", "build", "--target", "gpu"])
    assert result.exit_code == 2
    assert "error:" in result.output and "supernet lut build --target gpu" in result.output
    assert "--lut FILE" in result.output


def test_bad_values_are_one_line_errors(tmp_path):
    out = str(tmp_path / "x.json")
    bad = runner.invoke(app, ["lut", "build", "--target", "cpu", "--out", out, "precision=float64"])
    assert bad.exit_code == 2 and "precision" in bad.output and "float64" in bad.output
    bad = runner.invoke(app, ["lut", "build", "--target", "cpu", "--runtime", "openvino", "--out", out])
    assert bad.exit_code == 2 and "runtime" in bad.output and "openvino" in bad.output
    bad = runner.invoke(app, ["lut", "build", "--target", "cpu", "resolutions=[20]"])
    assert bad.exit_code == 2 and "resolutions=[20]" in bad.output
    truncated = tmp_path / "t.json"
    truncated.write_text('{"format": "supernet-latency-table", "vers')
    shown = runner.invoke(app, ["lut", "show", str(truncated)])
    assert shown.exit_code == 2 and "corrupt or truncated" in shown.output
