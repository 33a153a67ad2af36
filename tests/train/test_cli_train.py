from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from supernet.run.directory import load_checkpoint
from supernet_cli.main import app

runner = CliRunner()


def run_cli(*args: str):
    return runner.invoke(app, list(args))


def test_train_end_to_end_through_the_cli(tmp_path, QUICK):
    result = run_cli("train", *QUICK, "max_steps=6", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "done at step 6" in result.output
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    again = run_cli("train", *QUICK, "max_steps=6", "--run-dir", str(tmp_path / "run"))
    assert again.exit_code == 2 and "already holds a run" in again.output
    resumed = run_cli("train", "--resume", str(tmp_path / "run"), "max_steps=8")
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 8


@pytest.mark.parametrize(("args", "message"), [
    (["nonexistent_key=1"], "Key 'nonexistent_key' not in 'TrainConfig'"),
    (["data.name=fashion_mnist", "data.root=/nonexistent/fmnist"], "/nonexistent/fmnist"),
    (["data.name=imagenet"], "unknown dataset 'imagenet'"),
    (["device=cuda:7"], "cuda"),
    (["optim.name=lion"], "optim.name='lion'"),
    (["strategy.name=nope"], "strategy.name='nope'"),
])
def test_bad_config_is_one_line_error_with_exit_2(tmp_path, args, message, QUICK):
    if args == ["device=cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    result = run_cli("train", *QUICK, *args, "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_resume_without_checkpoint_errors(tmp_path):
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.exit_code == 2 and "no checkpoints/last.pt" in result.output


def test_corrupt_and_mismatched_checkpoints_error(tmp_path, QUICK):
    run = tmp_path / "run"
    assert run_cli("train", *QUICK, "max_steps=2", "--run-dir", str(run)).exit_code == 0
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])
    result = run_cli("train", "--resume", str(run))
    assert result.exit_code == 2 and "corrupt or truncated" in result.output
    last.write_bytes(good)
    result = run_cli("train", "--resume", str(run), "space.head.channels=64")
    assert result.exit_code == 2 and "does not match" in result.output


def test_sigterm_leaves_a_loadable_checkpoint(tmp_path, QUICK):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "supernet_cli.main", "train", *QUICK, "epochs=50", "--run-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output
    assert "stopped by SIGTERM" in output
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert 0 < state["step"] < 50 * 12
