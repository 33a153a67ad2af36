"""Progressive shrinking: phases where the YAML puts them, children inside each phase, channel sorting,
a frozen teacher, exact resume mid-phase, and config errors that name the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from supernet.config import compose_config
from supernet.data import make_loader
from supernet.errors import SupernetError
from supernet.models import Supernet
from supernet.models.sorting import mid_importance, stage_output_importance
from supernet.ops import assign_tensor
from supernet.run.directory import config_for_resume, load_checkpoint
from supernet.space import Arch, SearchSpace
from supernet.train.loop import Trainer, train
from supernet.train.optim import build_optimizer, learning_rate
from supernet.train.strategies.progressive_shrinking import ProgressiveShrinking

# 64 synthetic images, 32 held out: 32 training images in batches of 8 make 4 steps per epoch, so a
# phase of 0.5 epochs is 2 steps. Validation runs only at the end (val.every_epochs is large).
TINY = [
    "data.name=synthetic", "data.synthetic.train_size=64", "data.synthetic.test_size=32",
    "data.val_size=32", "data.batch_size=8", "val.calib_images=16", "val.calib_batch_size=16",
    "val.middle_children=2", "val.batch_size=32", "val.every_epochs=100", "threads=1", "log.every=3",
    "log.progress=false", "strategy=progressive_shrinking",
]
STEPS_PER_EPOCH = 4
PHASES = [
    {"name": "full", "epochs": 0.5, "lr": 0.05},
    {"name": "kernel", "elastic": {"kernel": [3, 5]}, "epochs": 0.5, "lr": 0.02, "distill_weight": 1.0},
    {"name": "depth", "elastic": {"kernel": "all", "depth": [2, 3]}, "epochs": 0.5, "lr": 0.02,
     "children_per_step": 2, "distill_weight": 0.5},
    {"name": "expand", "elastic": {"kernel": [3, 5], "depth": [1, 2, 3], "expand": [3, 4]}, "epochs": 0.75,
     "lr": 0.02, "warmup_epochs": 0.25, "children_per_step": 3, "sort_channels": True, "distill_weight": 1.0},
    {"name": "width", "elastic": {"expand": [2, 3, 4], "width": [0.75, 1.0], "resolution": [24, 28]},
     "epochs": 0.5, "lr": 0.01, "children_per_step": 2, "sort_channels": True, "distill_weight": 1.0},
]
SPANS = [(0, 2), (2, 4), (4, 6), (6, 9), (9, 11)]  # [start, end) of each phase, in steps
MID_PHASE = 7  # inside 'expand', after the teacher was made and channels were sorted


def tiny_cfg(*overrides: str, phases: list[dict] | None = None):
    cfg = compose_config("train", [*TINY, *overrides])
    cfg.strategy.phases = OmegaConf.create(copy.deepcopy(PHASES if phases is None else phases))
    return cfg


def tiny_strategy(space: SearchSpace, phases: list[dict] | None = None,
                  steps_per_epoch: int = STEPS_PER_EPOCH, **strategy_keys) -> ProgressiveShrinking:
    cfg = tiny_cfg(phases=phases)
    for key, value in strategy_keys.items():
        cfg.strategy[key] = value
    return ProgressiveShrinking(space.with_io(1, 10), cfg, steps_per_epoch)


def events(run_dir: Path) -> list[tuple[int, str]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["event"]) for r in records if "event" in r]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """The whole tiny schedule, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("straight")
    train(tiny_cfg(), run_dir)
    return run_dir


# ---------------------------------------------------------------------- phases on the step axis
def test_phase_boundaries_fall_where_the_yaml_says(straight_run, small_space):
    strategy = tiny_strategy(small_space)
    assert [(span.start, span.end) for span in strategy.spans] == SPANS
    assert strategy.total_steps() == SPANS[-1][1]
    for index, (start, end) in enumerate(SPANS):
        assert {strategy.span_of(step).index for step in range(start, end)} == {index}
        # describe() takes the number of steps done: after the phase's last step it still names it.
        assert strategy.describe(end) == {"phase": index, "phase_name": PHASES[index]["name"]}
        segment_start = learning_rate(start, strategy.segments())
        warmup = round(PHASES[index].get("warmup_epochs", 0) * STEPS_PER_EPOCH)
        assert segment_start == pytest.approx(PHASES[index]["lr"] / (warmup or 1))
    # The loop announced each phase at its first step, the teacher at the end of phase 0, and sorted
    # channels where the YAML asks; the checkpoint records the last phase and its name.
    logged = events(straight_run)
    announced = [(step, text.split("'")[1]) for step, text in logged if text.startswith("phase")]
    assert announced == [(start, p["name"]) for (start, _), p in zip(SPANS, PHASES, strict=True)]
    assert [step for step, text in logged if text.startswith("teacher")] == [SPANS[1][0]]
    assert [step for step, text in logged if text.startswith("sorted")] == [SPANS[3][0], SPANS[4][0]]
    meta = json.loads((straight_run / "checkpoints" / "last.json").read_text())
    assert meta["step"] == 11 and meta["phase"] == 4 and meta["phase_name"] == "width"
    results = json.loads((straight_run / "results.json").read_text())
    assert set(results["test"]) == {"max", "min", "mid0", "mid1"}


def test_fresh_optimizer_at_phase_starts(small_space):
    every = tiny_strategy(small_space)
    after_sort = tiny_strategy(small_space, fresh_optimizer="after_sort")
    starts = [start for start, _ in SPANS[1:]]
    assert [s for s in range(12) if every.needs_new_optimizer(s)] == starts
    assert [s for s in range(12) if after_sort.needs_new_optimizer(s)] == [SPANS[3][0], SPANS[4][0]]


def test_children_stay_inside_their_phase(small_space):
    space = small_space.with_io(1, 10)
    strategy = tiny_strategy(small_space, steps_per_epoch=80)  # 40..60 steps per phase
    biggest = space.max()
    for span, phase in zip(strategy.spans, PHASES, strict=True):
        elastic = phase.get("elastic", {})
        allowed = {dim: set(space_choices_of(space, dim) if v == "all" else v) for dim, v in elastic.items()}
        seen: dict[str, set] = {dim: set() for dim in ("kernel", "expand", "depth", "width", "resolution")}
        for step in range(span.start, span.end):
            tasks = strategy.children(step)
            assert len(tasks) == phase.get("children_per_step", 1)
            for task in tasks:
                values = dimension_values(task.arch)
                for dim, found in values.items():
                    seen[dim] |= found
                    assert found <= allowed.get(dim, dimension_values(biggest)[dim]), (step, dim, task.arch)
                weight = phase.get("distill_weight", 0.0)
                assert task.label_weight == 1.0 and task.distill_weight == weight
                assert task.distill_from == ("teacher" if weight else None)
        # Every elastic choice was drawn at least once, every fixed dimension only at its maximum.
        for dim, choices in allowed.items():
            assert seen[dim] == choices, (phase["name"], dim)
    again = tiny_strategy(small_space, steps_per_epoch=80)
    other_seed = ProgressiveShrinking(space, tiny_cfg("seed=1"), 80)
    late = strategy.spans[-1].start + 3
    assert [t.arch for t in strategy.children(late)] == [t.arch for t in again.children(late)]
    assert [t.arch for t in strategy.children(late)] != [t.arch for t in other_seed.children(late)]


def space_choices_of(space: SearchSpace, dim: str) -> set:
    from supernet.train.strategies.phases import space_choices

    return set(space_choices(space, dim))


def dimension_values(arch: Arch) -> dict[str, set]:
    return {"kernel": {k for stage in arch.kernels for k in stage},
            "expand": {e for stage in arch.expands for e in stage},
            "depth": set(arch.depths), "width": set(arch.widths), "resolution": {arch.resolution}}


def test_eval_children_show_what_the_phase_trains(small_space):
    strategy = tiny_strategy(small_space)
    space = strategy.space
    assert strategy.eval_children(SPANS[0][1], 3) == [("max", space.max())]  # phase 0: one network
    named = dict(strategy.eval_children(SPANS[2][1], 3))  # after 'depth': kernel {3,5}, depth {2,3}
    assert named["max"] == space.max()
    assert named["min"].depths == (2, 2, 2) and set(dimension_values(named["min"])["kernel"]) == {3}
    assert dimension_values(named["min"])["expand"] == {4}
    assert named["min"].resolution == max(space.spec.resolutions)
    assert strategy.eval_children(SPANS[2][1], 3) == strategy.eval_children(SPANS[2][1] - 1, 3)


# ---------------------------------------------------------------------- sorting and the teacher
def test_sorting_keeps_the_max_child_and_orders_channels(small_space):
    torch.manual_seed(0)
    space = small_space.with_io(1, 10)
    model = Supernet(space).eval()
    with torch.no_grad():  # BN with non-trivial statistics, so that a wrong permutation would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assign_tensor(module, "weight", torch.empty(module.num_features).uniform_(0.5, 1.5))
                assign_tensor(module, "bias", torch.empty(module.num_features).uniform_(-0.2, 0.2))
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    x = torch.randn(4, 1, 28, 28)
    small = Arch.parse("r28-w0.75:k3e2-w0.75:k3e2-w0.75:k3e2")
    before_max, before_small = run_child(model, space.max(), x), run_child(model, small, x)
    strategy = tiny_strategy(small_space)
    sort_step = SPANS[3][0]
    messages = strategy.begin_step(sort_step, model)
    assert any(m.startswith("sorted channels") for m in messages)
    assert strategy.needs_new_optimizer(sort_step) and not strategy.needs_new_optimizer(sort_step + 1)
    torch.testing.assert_close(run_child(model, space.max(), x), before_max, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(run_child(model, small, x), before_small, atol=1e-3)  # the prefixes changed
    for block in model.elastic_blocks():
        if not isinstance(block.expand, torch.nn.Identity):
            importance = mid_importance(block)
            assert torch.all(importance[:-1] >= importance[1:])
    for stage, stage_spec in zip(model.stages, space.stages, strict=True):
        if len(stage_spec.widths) > 1:
            importance = stage_output_importance(list(stage))
            assert torch.all(importance[:-1] >= importance[1:])
    assert strategy.begin_step(sort_step + 1, model) == []  # entered once: no second sort


def run_child(model: Supernet, arch: Arch, x: torch.Tensor) -> torch.Tensor:
    model.set_active(arch)
    with torch.no_grad():
        return model(x)


def test_teacher_is_the_frozen_max_child(tmp_path):
    trainer = Trainer(tiny_cfg(), tmp_path)
    strategy, model = trainer.strategy, trainer.model
    loader = make_loader(trainer.data.train, 8, shuffle=True, seed=0, epoch=0, drop_last=True)
    batches = list(loader) * 3  # 4 batches an epoch; the schedule is 11 steps
    frozen: dict[str, torch.Tensor] = {}
    for step, (images, labels) in enumerate(batches[: trainer.total_steps]):
        strategy.begin_step(step, model)
        if strategy.needs_new_optimizer(step):
            trainer.optimizer = build_optimizer(model, trainer.cfg.optim, trainer.device)
        if step == SPANS[1][0]:
            assert strategy.teacher is not None
            frozen = {k: v.clone() for k, v in strategy.teacher.net.state_dict().items()}
            extracted = model.extract(model.space.max()).state_dict()
            assert frozen.keys() == extracted.keys()
            assert all(torch.equal(frozen[k], extracted[k]) for k in frozen)
        elif step < SPANS[1][0]:
            assert strategy.teacher is None
        trainer.train_step(images, labels, step)
    teacher = strategy.teacher
    teacher.train()  # the loop never asks, but a frozen teacher must refuse anyway
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad or p.grad is not None for p in teacher.parameters())
    after = teacher.net.state_dict()  # weights and BN statistics (running mean/var, batch count)
    assert all(torch.equal(after[k], frozen[k]) for k in frozen)
    # Meanwhile the supernet trained on: its max child is no longer the teacher.
    current = model.extract(model.space.max()).state_dict()
    assert not all(torch.equal(current[k], frozen[k]) for k in frozen)
    assert teacher(torch.randn(2, 1, 32, 32)).grad_fn is None


# ---------------------------------------------------------------------- resume
def test_resume_mid_phase_equals_an_uninterrupted_run(straight_run, tmp_path):
    train(tiny_cfg(f"max_steps={MID_PHASE}"), tmp_path)
    paused = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert paused["step"] == MID_PHASE and paused["strategy"]["phase"] == 3
    assert paused["strategy"]["phase_steps_done"] == MID_PHASE - SPANS[3][0]
    assert paused["strategy"]["teacher"] is not None
    longer = ["max_steps=null"]
    train(config_for_resume(tmp_path, longer), tmp_path, resume=True, overrides=longer)
    a = load_checkpoint(straight_run / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == SPANS[-1][1]
    for key, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][key], tensor, rtol=0, atol=1e-6, msg=key)
    for key, tensor in a["strategy"]["teacher"].items():
        torch.testing.assert_close(b["strategy"]["teacher"][key], tensor, rtol=0, atol=0, msg=key)
    # The teacher saved mid-phase is the one the run ends with.
    for key, tensor in paused["strategy"]["teacher"].items():
        assert torch.equal(a["strategy"]["teacher"][key], tensor), key


# ---------------------------------------------------------------------- config errors
def with_phase(index: int, **changes) -> list[dict]:
    phases = copy.deepcopy(PHASES)
    phases[index].update(changes)
    return phases


@pytest.mark.parametrize(("phases", "message"), [
    (with_phase(1, elastic={"kernal": [3, 5]}), r"strategy\.phases\[1\]\.elastic\.kernal is not a dimension"),
    (with_phase(1, elastic={"kernel": [3, 7]}), r"strategy\.phases\[1\]\.elastic\.kernel: 7 is not a choice"),
    (with_phase(4, elastic={"width": [0.5]}), r"strategy\.phases\[4\]\.elastic\.width: 0\.5 is not a choice"),
    (with_phase(4, elastic={"resolution": [64]}), r"strategy\.phases\[4\]\.elastic\.resolution: 64"),
    (with_phase(2, epochs=0), r"strategy\.phases\[2\]\.epochs must be a positive number, got 0"),
    (with_phase(2, epochs=-1.5), r"strategy\.phases\[2\]\.epochs must be a positive number"),
    (with_phase(2, epochs=0.01), r"strategy\.phases\[2\]\.epochs=0\.01 gives no training step"),
    (with_phase(3, sort_channel=True), r"strategy\.phases\[3\]\.sort_channel is not a phase key"),
    (with_phase(3, children_per_step=0), r"strategy\.phases\[3\]\.children_per_step must be a positive"),
    (with_phase(3, warmup_epochs=2), r"strategy\.phases\[3\]\.warmup_epochs=2 is longer than the phase"),
    (with_phase(0, distill_weight=1.0), r"strategy\.phases\[0\]\.distill_weight must be 0"),
    (with_phase(1, lr=0), r"strategy\.phases\[1\]\.lr must be a positive number"),
    ([], r"strategy\.phases must be a non-empty list"),
])
def test_bad_phases_name_the_key(small_space, phases, message):
    with pytest.raises(SupernetError, match=message):
        tiny_strategy(small_space, phases=phases)


def test_bad_fresh_optimizer_names_the_key(small_space):
    with pytest.raises(SupernetError, match=r"strategy\.fresh_optimizer='always'"):
        tiny_strategy(small_space, fresh_optimizer="always")


def test_shipped_schedule_fits_the_small_space(small_space):
    cfg = compose_config("train", ["strategy=progressive_shrinking"])
    strategy = ProgressiveShrinking(small_space.with_io(1, 10), cfg, steps_per_epoch=429)
    names = [span.phase.name for span in strategy.spans]
    assert names == ["full", "kernel", "depth-1", "depth-2", "expand-1", "expand-2", "width-resolution"]
    assert strategy.total_steps() == 8 * 429  # as long as the sandwich default (epochs: 8)
    assert strategy.spans[-1].space.size() == strategy.space.size()  # the last phase trains every child
