"""The loss guard: it stops, or rolls back a bounded number of times with the lr halved each time."""

from __future__ import annotations

import itertools
import json
import re

import pytest
import torch
from typer.testing import CliRunner

from supernet.run.directory import config_for_resume, load_checkpoint
from supernet.train.loop import Trainer, TrainingDiverged, train
from supernet_cli.main import app

DIVERGING = ["optim.lr=1e6", "schedule.name=constant", "schedule.warmup_epochs=0", "guard.action=rollback",
             "checkpoint_every_steps=1"]


def test_rollback_is_bounded_and_halves_the_lr_each_time(quick_cfg, tmp_path):
    trainer = Trainer(quick_cfg(*DIVERGING), tmp_path)
    with pytest.raises(TrainingDiverged, match=r"after 3 rollback\(s\) to .*last.pt .*lr already x0.125"):
        trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rollbacks = [r for r in records if "rewound_to" in r]
    assert [re.search(r"lr x([\d.]+)", r["event"]).group(1) for r in rollbacks] == ["0.5", "0.25", "0.125"]
    # the lr each diverged step ran with: the base lr, then halved at every rollback
    tried = [float(re.search(r", lr ([\d.e+]+)\)", r["event"]).group(1)) for r in rollbacks]
    assert tried[0] == 1e6 and all(b == a / 2 for a, b in itertools.pairwise(tried))
    assert trainer.rollbacks == 3 and trainer.lr_scale == 0.125
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == rollbacks[0]["rewound_to"]


def test_rollback_count_and_lr_scale_survive_the_reload(quick_cfg, tmp_path):
    Trainer(quick_cfg("guard.action=rollback", "max_steps=3"), tmp_path).fit()  # last.pt at step 3
    trainer = Trainer(quick_cfg("guard.action=rollback"), tmp_path, resume=True)
    for count in (1, 2):
        assert trainer._guard(torch.tensor([float("nan")])) is False
        assert (trainer.step, trainer.rollbacks, trainer.lr_scale) == (3, count, 0.5 ** count)


def test_the_message_names_a_checkpoint_only_when_one_exists(quick_cfg, tmp_path):
    with pytest.raises(TrainingDiverged, match="loss diverged at step 1") as before:
        train(quick_cfg("guard.max_loss=0.01"), tmp_path / "new")
    assert "before any checkpoint was written" in str(before.value) and "last.pt" not in str(before.value)
    train(quick_cfg("max_steps=2"), tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"the last good checkpoint is .*checkpoints/last.pt"):
        train(config_for_resume(tmp_path / "run", ["guard.max_loss=0.01", "max_steps=4"]), tmp_path / "run",
              resume=True)


def test_a_diverging_run_stops_through_the_cli_in_one_line(tmp_path, QUICK):
    result = CliRunner().invoke(app, ["train", *QUICK, *DIVERGING, "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "after 3 rollback(s)" in " ".join(result.output.split())
    assert "Traceback" not in result.output
