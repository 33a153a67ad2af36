from __future__ import annotations

import json

import torch
from resume_support import straight_and_resumed

from supernet.run.directory import load_checkpoint
from supernet.train.loop import Trainer, train


def _losses(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if "loss" in r]


def test_loss_decreases_on_synthetic_task(quick_cfg, tmp_path):
    result = train(quick_cfg("epochs=3"), tmp_path)
    losses = _losses(tmp_path)
    assert result.step == 3 * 12  # 512 images - 128 held out, batch 32
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert result.val["max"] > 0.3  # 10 classes: chance is 0.1
    assert set(result.test) == {"max", "min", "mid0"}


def test_run_dir_holds_config_metrics_and_checkpoints(quick_cfg, tmp_path):
    train(quick_cfg("max_steps=4"), tmp_path, overrides=["max_steps=4"])
    assert (tmp_path / "overrides.txt").read_text() == "max_steps=4\n"
    assert "torch" in json.loads((tmp_path / "versions.json").read_text())
    saved = (tmp_path / "config.yaml").read_text()
    assert "in_channels: 1" in saved and "max_steps: 4" in saved
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and {"model", "optimizer", "scaler", "rng", "strategy"} <= set(state)
    meta = json.loads((tmp_path / "checkpoints" / "last.json").read_text())
    assert meta["step"] == 4 and meta["strategy"] == "sandwich"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["step"] == 4 and results["test"] == {}  # stopped early: no test-set report


def test_resume_equals_uninterrupted_run(quick_cfg, tmp_path):
    a, b = straight_and_resumed(tmp_path, quick_cfg, stop=4, total=10)
    momentum_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    momentum_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    for x, y in zip(momentum_a, momentum_b, strict=True):
        torch.testing.assert_close(y, x, rtol=0, atol=1e-6)


def test_children_depend_only_on_seed_and_step(quick_cfg, tmp_path):
    first = Trainer(quick_cfg(), tmp_path / "a").strategy
    second = Trainer(quick_cfg(), tmp_path / "b").strategy
    other_seed = Trainer(quick_cfg("seed=1"), tmp_path / "c").strategy
    for step in (0, 1, 7, 1000):
        assert [t.arch for t in first.children(step)] == [t.arch for t in second.children(step)]
    assert [t.arch for t in first.children(3)] != [t.arch for t in other_seed.children(3)]
    tasks = first.children(5)
    assert tasks[0].arch == first.space.max() and tasks[0].label_weight == 1 and tasks[0].dropout
    assert tasks[1].arch == first.space.min() and tasks[1].distill_from == "first"
    assert len(tasks) == 2 + quick_cfg().strategy.num_random
