"""A run under bad input, a full disk, and the leftovers of a killed process."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import QUICK as QUICK_OVERRIDES
from typer.testing import CliRunner

from supernet.config import compose_config
from supernet.run import files
from supernet.run.directory import config_for_resume
from supernet.train.loop import train
from supernet.train.reporting import read_metrics
from supernet_cli.main import app

runner = CliRunner()
BAD_VALUES = [("epochs=abc", "epochs"), ("optim.lr=-1", "optim.lr"), ("optim.lr=0", "optim.lr"),
              ("data.batch_size=-1", "data.batch_size"), ("epochs=-1", "epochs")]


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert text.count("error:") == 1, result.output
    return text[text.index("error:"):]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run stopped at step 4 (max_steps), shared by the tests that only read it or copy it."""
    run = tmp_path_factory.mktemp("run")
    train(compose_config("train", [*QUICK_OVERRIDES, "max_steps=4"]), run)
    return run


@pytest.mark.parametrize(("override", "key"), BAD_VALUES)
def test_a_bad_value_is_refused_in_one_line_naming_the_key(tmp_path, QUICK, override, key):
    text = _error_line(runner.invoke(app, ["train", *QUICK, override, "--run-dir", str(tmp_path / "run")]))
    assert key in text
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(("override", "key"), BAD_VALUES)
def test_a_bad_value_on_resume_is_refused_and_leaves_the_run_as_it_was(finished_run, override, key):
    before = (finished_run / "checkpoints" / "last.pt").read_bytes()
    text = _error_line(runner.invoke(app, ["train", "--resume", str(finished_run), "max_steps=8", override]))
    assert f"override {override}" in text or f"{key}=" in text
    assert "max_steps=8" not in text.split("--resume:")[1].split(":")[0]  # names the override at fault
    assert (finished_run / "checkpoints" / "last.pt").read_bytes() == before


def test_a_full_disk_during_training_is_one_line_and_leaves_no_temp_file(small_disk, QUICK):
    disk = small_disk(1 << 20)  # room for the run's small files, not for a checkpoint
    run = disk / "run"
    text = _error_line(runner.invoke(app, ["train", *QUICK, "max_steps=2", "--run-dir", str(run)]))
    assert f"disk full: cannot write {run}/checkpoints/last.pt (it needs" in text
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [] and not (run / "checkpoints" / "last.pt").exists()


def test_enospc_while_writing_a_checkpoint_is_one_line(tmp_path, QUICK, monkeypatch):
    real_fsync = os.fsync

    def full_for_big_files(fd):  # the disk fills once the checkpoint (megabytes) is written
        if os.fstat(fd).st_size > 100_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", full_for_big_files)
    run = tmp_path / "run"
    text = _error_line(runner.invoke(app, ["train", *QUICK, "max_steps=2", "--run-dir", str(run)]))
    assert f"disk full: cannot write {run}/checkpoints/last.pt" in text
    assert [p for p in run.rglob("*") if p.name.endswith(".tmp")] == []


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_resume_removes_temporaries_of_a_killed_run_and_repairs_metrics(finished_run, tmp_path, QUICK):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    keep = {p: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    # the run went on to step 8, logged it, and was killed before its next checkpoint, mid-record
    train(config_for_resume(run, ["max_steps=8"]), run, resume=True)
    for path, data in keep.items():
        path.write_bytes(data)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "lo')
    old = time.time() - 3600
    dead = _dead_pid()
    checkpoints = run / "checkpoints"
    planted = [checkpoints / f".last.pt.{dead}.abcd1234.tmp", checkpoints / ".best.pt.x1y2.tmp",
               run / f".config.yaml.{dead}.efgh5678.tmp"]
    alive = run / f".notes.{os.getppid()}.ijkl9012.tmp"  # a writer still running: not ours to remove
    for path in (*planted, alive):
        path.write_bytes(b"partial")
        os.utime(path, (old, old))

    train(config_for_resume(run, ["max_steps=8"]), run, resume=True)
    assert not any(p.exists() for p in planted) and alive.exists()
    raw = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]  # all whole
    assert [r["rewound_to"] for r in raw if "rewound_to" in r] == [4, 4]
    assert [r["step"] for r in raw if "loss" in r].count(8) == 2  # step 8 ran twice...
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == [4, 8]  # ...and readers keep it once
    assert [r["step"] for r in records if "val" in r] == [4, 8]
