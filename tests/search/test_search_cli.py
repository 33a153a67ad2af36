"""`supernet search` from the command line: the missing-target error, and a search with a real CPU table."""

from __future__ import annotations

import json

import pytest
import torch
from search_support import SEARCH_OVERRIDES
from typer.testing import CliRunner

from supernet.latency import LatencyTable
from supernet_cli.main import app


def one_line(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_target_without_cuda_or_table_is_a_clear_error(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["search", str(run_dir), "--target", "gpu",
                                      f"latency.cache_dir={tmp_path}"])
    assert result.exit_code == 2, one_line(result)
    text = one_line(result)
    assert "error: --target gpu: no CUDA device on this machine" in text
    assert "--lut FILE" in text and "Traceback" not in text
    assert not (run_dir / "search" / "gpu").exists()


def test_search_with_a_real_cpu_table_measures_the_front(run_dir, tmp_path):
    """Through `get_table`: no table cached, so a tiny one is built here, then the front is re-measured."""
    out = tmp_path / "search"
    kept = [o for o in SEARCH_OVERRIDES if not o.startswith(("constraints.", "generations=", "predictor."))]
    args = ["search", str(run_dir), "--target", "cpu", "--max-latency-ms", "1000", *kept,
            "generations=1", f"out_dir={out}", f"latency.cache_dir={tmp_path / 'luts'}", "latency.threads=1",
            "latency.repeats=2", "latency.warmup=1", "latency.rounds=1", "latency.fit.children=4",
            "latency.runtime=torch"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, one_line(result)
    [table_path] = (tmp_path / "luts").glob("cpu-*.json")
    table = LatencyTable.load(table_path)
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["lut"] == str(table_path)
    assert pareto["constraints"]["max_latency_ms"] == 1000
    assert pareto["front"]
    for entry in pareto["front"]:
        assert entry["latency_ms"] == pytest.approx(table.predict(table.space.parse(entry["arch"])))
        assert entry["latency_ms_measured"] > 0
        assert entry["violates_measured"] is False  # nothing measures 1 s
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latency_measurement"]["report"]["n"] == len(pareto["front"])
    assert "Pareto front on cpu" in result.stdout and "predicted vs measured latency" in result.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_search_evaluates_on_cuda_and_measures_the_front(run_dir, tmp_path):
    out = tmp_path / "search"
    kept = [o for o in SEARCH_OVERRIDES if not o.startswith(("constraints.", "generations=", "predictor."))]
    args = ["search", str(run_dir), "--target", "gpu", *kept, "generations=1", f"out_dir={out}",
            "evaluation.device=cuda", f"latency.cache_dir={tmp_path / 'luts'}", "latency.repeats=5",
            "latency.warmup=2", "latency.rounds=1", "latency.fit.children=4", "latency.runtime=torch"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, one_line(result)
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["target"] == "gpu" and pareto["front"]
    assert all(e["latency_ms_measured"] > 0 for e in pareto["front"])
    state = json.loads((out / "state.json").read_text())
    assert state["evaluation"]["device"] == "cuda" and state["evaluation"]["precision"] in ("bf16", "fp16")
