import json

import pytest
import torch
from typer.testing import CliRunner

from supernet_cli.main import app

runner = CliRunner()
# the small space cut to 8 children (kernel 3 or 5 per stage, resolution 24): 10 blocks (stem, first block,
# 2 per stage, final conv, classifier), a real build in seconds
SHRUNK = ["space.choices.kernel=[3,5]", "space.choices.expand=[2]", "space.choices.depth=[1]",
          "space.choices.width=[1.0]", "resolutions=[24]", "repeats=4", "warmup=1", "rounds=2", "threads=1",
          "statistic=min", "calibration.children=4"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("lut") / "small.json"
    result = runner.invoke(app, ["lut", "build", "--target", "cpu", "--out", str(out), *SHRUNK])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_build_writes_a_table_that_shows(built):
    out, output = built
    assert f"wrote {out}" in output
    shown = runner.invoke(app, ["lut", "show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "10 blocks of space small-" in shown.output and "predicted latency" in shown.output
    summary = json.loads(runner.invoke(app, ["lut", "show", str(out), "--json"]).output)
    assert summary["entries"] == 10 and summary["resolutions"] == [24]
    assert summary["fingerprint"]["threads"] == 1 and summary["measure"]["statistic"] == "min"
    assert summary["measure"]["paired"] is True and summary["measure"]["reference_ms"] > 0  # the default
    assert summary["measure"]["reference"] == "smallest_child"
    assert summary["calibration"]["held_out"]["n"] == 1
    assert summary["predicted_ms"]["max"]["calibrated"] > 0


def test_validate_measures_fresh_children(built):
    out, _ = built
    result = runner.invoke(app, ["lut", "validate", str(out), "--children", "2", "--repeats", "4",
                                 "--sweeps", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["calibrated"]["n"] == 2 and report["calibrated"]["mape_pct"] >= 0
    # every child of the table's calibration (max, min and 4 random) is timed again as a drift anchor
    assert report["drift"]["anchors"] == 6 and report["drift"]["ratio"] > 0
    assert "device drift since the build" in result.output
    # timed in pairs, as the table was: counted in its unit, with the reference's latency now beside it
    speed = report["device_speed"]
    assert speed["reference_ms_table"] == json.loads(out.read_text())["measure"]["reference_ms"]
    assert speed["reference_ms_now"] > 0 and "reference network" in result.output
    # three sweeps, as asked: the fresh children's odd sweeps are compared with their even ones
    assert report["repeatability"]["n"] == 2 and "repeatability" in result.output
    full = json.loads(runner.invoke(app, ["lut", "validate", str(out), "--children", "2", "--repeats", "2",
                                          "--sweeps", "3", "--json"]).output)
    assert [len(child["sweeps_ms"]) for child in full["children"]] == [3, 3]


def test_validate_refuses_a_table_from_another_device(built, tmp_path):
    out, _ = built
    data = json.loads(out.read_text())
    data["fingerprint"]["device"] = "a different cpu"
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(data))
    result = runner.invoke(app, ["lut", "validate", str(moved), "--children", "2"])
    assert result.exit_code == 2
    assert "a different cpu" in result.output and "Predicting is allowed" in result.output
    assert runner.invoke(app, ["lut", "show", str(moved)]).exit_code == 0  # showing (predicting) still works


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_gpu_target_without_cuda_exits_2_with_the_way_out():
    result = runner.invoke(app, ["lut", "build", "--target", "gpu"])
    assert result.exit_code == 2
    assert "error:" in result.output and "supernet lut build --target gpu" in result.output
    assert "--lut FILE" in result.output


def test_bad_values_are_one_line_errors(tmp_path):
    out = str(tmp_path / "x.json")
    bad = runner.invoke(app, ["lut", "build", "--target", "cpu", "--out", out, "dtype=float64"])
    assert bad.exit_code == 2 and "dtype 'float64'" in bad.output
    bad = runner.invoke(app, ["lut", "build", "--target", "cpu", "resolutions=[20]"])
    assert bad.exit_code == 2 and "resolutions=[20]" in bad.output
    truncated = tmp_path / "t.json"
    truncated.write_text('{"format": "supernet-latency-table", "vers')
    shown = runner.invoke(app, ["lut", "show", str(truncated)])
    assert shown.exit_code == 2 and "corrupt or truncated" in shown.output
