"""Training on two processes (torchrun + DistributedDataParallel, gloo on CPU) against one process.

Starting processes that import torch is the expensive part, so one torchrun launch runs every two-rank
scenario (this file is also the workers' script, see `_worker`) and leaves what each rank saw in files;
the tests below read them. The scenarios, in order: the `supernet train` command without --run-dir;
a synchronised-BN run to compare with one process on the global batch; a per-rank-BN run; the same run
stopped half way and resumed; progressive shrinking into a phase with a teacher; a check that ranks
disagreeing on the children is caught; a rank failing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from supernet.config import ConfigError, compose_config
from supernet.data import make_loader
from supernet.ops import DynamicBatchNorm2d
from supernet.ops.sync_batchnorm import SyncDynamicBatchNorm2d, sync_batch_norm
from supernet.run.directory import load_checkpoint
from supernet.train.distributed import (
    DistributedError,
    DistributedSettings,
    GlobalBatchShardSampler,
    SingleProcess,
    World,
    world_from_env,
)
from supernet.train.loop import Trainer

# The run both sides compute: no augmentation or dropout (each rank draws its own), and an lr at which
# rounding noise does not grow past 1e-6 in 3 steps (at lr 0.1 merely changing torch's thread count
# moves the single-process result by 8e-5 after 3 steps: BN amplifies rounding in near-constant channels).
EQUIVALENCE = ["epochs=2", "max_steps=3", "optim.lr=0.01", "data.augment.pad=0", "data.augment.flip=false",
               "strategy.max_dropout=false", "distributed.check_children_every=1"]
RANKS = 2
# Two phases of 3 steps at 2 ranks x 32 images: the second makes a teacher and sorts channels.
SHRINKING = ["strategy=progressive_shrinking", "max_steps=5", "strategy.phases=[{name: full, epochs: 0.5, "
             "lr: 0.05}, {name: expand, elastic: {kernel: [3, 5], expand: [3, 4]}, epochs: 0.5, lr: 0.02, "
             "sort_channels: true, distill_weight: 1.0}]"]


# ---------------------------------------------------------------------------------------------- the launch
class Launch:
    def __init__(self, out: Path, output: str, returncode: int | None) -> None:
        self.out, self.output, self.returncode = out, output, returncode

    def file(self, name: str) -> Path:
        path = self.out / name
        assert path.is_file(), f"the workers did not write {name}:\n{self.output[-6000:]}"
        return path

    def seen_by(self, rank: int) -> dict[str, Any]:
        return json.loads(self.file(f"rank{rank}.json").read_text())

    def model(self, name: str, rank: int) -> dict[str, torch.Tensor]:
        return torch.load(self.file(f"{name}-model-{rank}.pt"))


_LAUNCHES: dict[str, Launch] = {}


@pytest.fixture
def two_ranks(QUICK, tmp_path_factory) -> Launch:
    """The one torchrun launch of this module (memoised across its tests)."""
    if "launch" not in _LAUNCHES:
        out = tmp_path_factory.mktemp("two_ranks")
        (out / "cli").mkdir()
        spec = out / "spec.json"
        spec.write_text(json.dumps({"out": str(out), "quick": QUICK}))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={RANKS}",
                   __file__, str(spec)]
        try:
            process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, timeout=300)
            _LAUNCHES["launch"] = Launch(out, process.stdout, process.returncode)
        except subprocess.TimeoutExpired as hung:  # recorded too: the other tests fail fast, not hang again
            _LAUNCHES["launch"] = Launch(out, f"torchrun hung:\n{hung.output}", None)
    return _LAUNCHES["launch"]


# ---------------------------------------------------------------------------------------------- two ranks
def test_two_ranks_match_one_process_on_the_global_batch_with_synchronised_bn(two_ranks, quick_cfg, tmp_path):
    one = Trainer(quick_cfg(*EQUIVALENCE, "data.batch_size=64"), tmp_path)  # 32 per rank x 2 ranks
    one_result = one.fit()
    two = two_ranks.model("sync", 0)
    reference = one.model.state_dict()
    parameters = dict(one.model.named_parameters())
    assert set(two) == set(reference)
    for name, tensor in reference.items():
        # BN buffers were recomputed by the validation's recalibration from these parameters: a variance
        # of ~1 moves by ~1e-5 where the parameters moved by 3e-6.
        tolerance = {"rtol": 0, "atol": 1e-5} if name in parameters else {"rtol": 1e-4, "atol": 1e-5}
        torch.testing.assert_close(two[name].float(), tensor.float(), **tolerance, msg=name)
    # Each rank evaluated half of the validation split; their counts add up to the single-process accuracy.
    assert two_ranks.seen_by(0)["sync_val"] == pytest.approx(one_result.val, abs=1 / 128)
    assert two_ranks.seen_by(0)["sync_val"] == two_ranks.seen_by(1)["sync_val"]


def test_ranks_train_the_same_children_and_a_mismatch_is_caught(two_ranks):
    first, second = two_ranks.seen_by(0), two_ranks.seen_by(1)
    assert first["children"] == second["children"]  # and the sync run checked every step as it went
    assert len(set(first["children"])) == len(first["children"])  # steps do differ
    for seen in (first, second):
        assert "the ranks train different children" in seen["children_mismatch"]


@pytest.mark.parametrize("run", ["straight", "shrinking"])
def test_per_rank_bn_keeps_every_rank_identical(two_ranks, run):
    first, second = two_ranks.model(run, 0), two_ranks.model(run, 1)
    for name, tensor in first.items():
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # each rank's running statistics come from its own batches, and are never saved
        torch.testing.assert_close(second[name], tensor, rtol=0, atol=0, msg=name)


def test_every_rank_distils_from_rank_0s_teacher(two_ranks):
    first, second = two_ranks.model("teacher", 0), two_ranks.model("teacher", 1)
    assert any(name.endswith("running_var") for name in first)  # rank-local statistics, made equal
    for name, tensor in first.items():
        torch.testing.assert_close(second[name], tensor, rtol=0, atol=0, msg=name)


def test_resume_on_two_ranks_continues_exactly(two_ranks):
    straight = load_checkpoint(two_ranks.out / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(two_ranks.out / "split" / "checkpoints" / "last.pt")
    assert straight["step"] == resumed["step"] == 4
    assert len(resumed["rng_per_rank"]) == RANKS
    assert not torch.equal(resumed["rng_per_rank"][0]["torch"], resumed["rng_per_rank"][1]["torch"])
    for name, tensor in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=0, atol=1e-6, msg=name)
    states = zip(straight["optimizer"]["state"].values(), resumed["optimizer"]["state"].values(), strict=True)
    for a, b in states:
        torch.testing.assert_close(b["momentum_buffer"], a["momentum_buffer"], rtol=0, atol=1e-6)


def test_a_two_rank_checkpoint_resumes_on_one_process_with_the_same_global_batch(two_ranks, tmp_path):
    import shutil

    from supernet.run.directory import CheckpointError, config_for_resume

    run = shutil.copytree(two_ranks.out / "split", tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"global batch of 64 .* 32 x 1 process.*data.batch_size=64"):
        Trainer(config_for_resume(run, []), run, resume=True)
    resumed = Trainer(config_for_resume(run, ["data.batch_size=64", "max_steps=5"]), run, resume=True)
    assert resumed.step == 4 and resumed.steps_per_epoch == 384 // 64
    assert resumed.fit().step == 5


def test_only_rank_0_writes(two_ranks):
    # Rank 1 was handed directories of its own in these runs: anything it wrote would be there.
    assert not (two_ranks.out / "sync-rank1").exists()
    assert not (two_ranks.out / "straight-rank1").exists()
    assert not (two_ranks.out / "shrinking-rank1").exists()
    assert (two_ranks.out / "straight" / "checkpoints" / "last.pt").is_file()
    # Both ranks trained in "split": one writer means one metrics line per logging window.
    metrics = (two_ranks.out / "split" / "metrics.jsonl").read_text()
    lines = [json.loads(line) for line in metrics.splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [2, 4]
    assert [r["final"]["step"] for r in lines if "final" in r] == [2, 4]


def test_the_command_under_torchrun_agrees_on_one_run_directory(two_ranks):
    runs = list((two_ranks.out / "cli" / "runs").iterdir())
    assert len(runs) == 1, runs  # a clock-named default directory, yet one for both ranks
    assert load_checkpoint(runs[0] / "checkpoints" / "last.pt")["step"] == 2
    assert two_ranks.output.count("done at step 2") == 1  # only rank 0 prints
    assert "(2 processes)" in two_ranks.output


def test_a_failing_rank_ends_the_job_with_its_error(two_ranks):
    assert two_ranks.returncode not in (0, None)  # it ended, and says it failed
    # torchrun's summary names the rank that failed first and shows its error (recorded for it).
    assert re.search(r"Root Cause.*rank\s*: 1 .*injected failure on rank 1", two_ranks.output, re.S), \
        two_ranks.output[-4000:]
    assert "rank 1 of 2 stopped: RuntimeError: injected failure on rank 1" in two_ranks.output


# ---------------------------------------------------------------------------------------------- one process
def test_a_single_process_gets_no_wrapper(quick_cfg, tmp_path):
    trainer = Trainer(quick_cfg(), tmp_path)
    assert isinstance(trainer.parallel, SingleProcess) and trainer.replica is trainer.model
    assert trainer.world == World() and trainer.steps_per_epoch == 384 // 32


def test_global_batch_shards_are_the_single_process_batches():
    from supernet.data import TensorImageDataset

    images = torch.zeros(100, 1, 2, 2, dtype=torch.uint8)
    dataset = TensorImageDataset(images, torch.arange(100))
    for epoch in (0, 3):
        one = [labels.tolist() for _, labels in make_loader(dataset, 2 * 8, shuffle=True, seed=5, epoch=epoch,
                                                           drop_last=True)]
        shards = []
        for rank in range(2):
            sampler = GlobalBatchShardSampler(dataset, 8, World(rank=rank, size=2), seed=5)
            sampler.set_epoch(epoch)
            loader = make_loader(dataset, 8, shuffle=True, seed=5, epoch=epoch, drop_last=True,
                                 sampler=sampler)
            shards.append([labels.tolist() for _, labels in loader])
        assert [a + b for a, b in zip(*shards, strict=True)] == one
        assert len(one) == 100 // 16


def test_sync_batch_norm_matches_batch_norm(tmp_path):
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = (torch.randn(6, 8, 5, 5, generator=generator) * 3 + 2).to(memory_format=torch.channels_last)
        for width in (8, 5):
            bn = DynamicBatchNorm2d(8)
            bn.assign_("weight", torch.empty(8).uniform_(0.5, 1.5, generator=generator))
            bn.assign_("bias", torch.empty(8).uniform_(-1, 1, generator=generator))
            stats = [bn.running_mean.clone()[:width], bn.running_var.clone()[:width]]
            ours_x, ref_x = x[:, :width].clone().requires_grad_(), x[:, :width].clone().requires_grad_()
            weight, bias = bn.weight[:width].detach().clone(), bn.bias[:width].detach().clone()
            ref_w, ref_b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
            ours_w, ours_b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
            ref_stats = [s.clone() for s in stats]
            ours = sync_batch_norm(ours_x, ours_w, ours_b, *stats, 0.1, 1e-5)
            ref = F.batch_norm(ref_x, *ref_stats, ref_w, ref_b, True, 0.1, 1e-5)
            upstream = torch.randn(ref.shape, generator=generator)
            (ours * upstream).sum().backward()
            (ref * upstream).sum().backward()
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
            for a, b in ((ours_x.grad, ref_x.grad), (ours_w.grad, ref_w.grad), (ours_b.grad, ref_b.grad)):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
            for a, b in zip(stats, ref_stats, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    finally:
        dist.destroy_process_group()


def test_converting_to_sync_bn_keeps_parameters_and_widths(quick_cfg, tmp_path):
    model = Trainer(quick_cfg(), tmp_path).model
    before = dict(model.named_parameters())
    model.stages[0][0].project[1].set_active(model.stages[0][0].project[1].num_features - 8)
    width = model.stages[0][0].project[1].active_features
    converted = SyncDynamicBatchNorm2d.convert(model)
    assert converted is model
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(isinstance(m, SyncDynamicBatchNorm2d) for m in norms)
    assert {n: id(p) for n, p in model.named_parameters()} == {n: id(p) for n, p in before.items()}
    assert model.stages[0][0].project[1].active_features == width
    assert model.stem[1].active_features == model.stem[1].num_features


@pytest.mark.parametrize(("overrides", "message"), [
    (["distributed.backend=mpi"], "distributed.backend='mpi'"),
    (["distributed.timeout_s=0"], "distributed.timeout_s=0.0: must be greater than 0"),
    (["distributed.check_children_every=-1"], "distributed.check_children_every=-1: must be at least 0"),
    (["distributed.sync_bn=maybe"], "distributed.sync_bn"),
])
def test_bad_distributed_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        compose_config("train", overrides)


def test_launch_errors_name_the_fix():
    with pytest.raises(DistributedError, match="backend=nccl needs CUDA"):
        DistributedSettings(backend="nccl").backend_for(torch.device("cpu"))
    with pytest.raises(DistributedError, match="cuda:LOCAL_RANK"):
        World(rank=1, local_rank=1, size=2).device_name("cuda:3")
    with pytest.raises(DistributedError, match="RANK=5 is outside WORLD_SIZE=2"):
        world_from_env({"WORLD_SIZE": "2", "RANK": "5"})
    assert world_from_env({}) == World()
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(3, 1, 4)
    assert World(rank=1, size=2).device_name("cpu") == "cpu"


# ---------------------------------------------------------------------------------------------- the workers
def _worker(spec_path: str) -> None:
    """Every rank runs this under torchrun, then writes what it saw to rank<R>.json."""
    from supernet.run.directory import config_for_resume
    from supernet.train.distributed import distributed_session
    from supernet_cli.main import app

    spec = json.loads(Path(spec_path).read_text())
    out, quick = Path(spec["out"]), spec["quick"]
    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)
    seen: dict[str, Any] = {}

    def config(*overrides: str):
        return compose_config("train", [*quick, *overrides])

    def own(name: str) -> Path:  # rank 1 gets a directory of its own, to catch any write of its
        return out / (name if rank == 0 else f"{name}-rank{rank}")

    with distributed_session(config("distributed.timeout_s=60")) as world:
        # The command, without --run-dir: the default directory is named after the clock.
        os.chdir(out / "cli")
        app(["train", *quick, "max_steps=2"], standalone_mode=False)

        sync = Trainer(config(*EQUIVALENCE, "distributed.sync_bn=true"), own("sync"), world=world)
        seen["sync_val"] = sync.fit().val
        torch.save(sync.model.state_dict(), out / f"sync-model-{rank}.pt")
        seen["children"] = [hashlib.sha256(repr(sync.strategy.children(step)).encode()).hexdigest()
                            for step in range(4)]

        straight = Trainer(config("epochs=2", "max_steps=4"), own("straight"), world=world)
        straight.fit()
        torch.save(straight.model.state_dict(), out / f"straight-model-{rank}.pt")

        Trainer(config("epochs=2", "max_steps=2"), out / "split", world=world).fit()
        resumed = Trainer(config_for_resume(out / "split", ["max_steps=4"]), out / "split", resume=True,
                          overrides=["max_steps=4"], world=world)
        resumed.fit()

        # Progressive shrinking into a second phase: a teacher (extracted with this rank's BN statistics)
        # and sorted channels.
        shrinking = Trainer(config(*SHRINKING), own("shrinking"), world=world)
        shrinking.fit()
        torch.save(shrinking.model.state_dict(), out / f"shrinking-model-{rank}.pt")
        torch.save(shrinking.strategy.teacher.state_dict(), out / f"teacher-model-{rank}.pt")

        try:  # rank r checks the children of step r as if they were step 0's
            resumed.parallel.check_children(0, resumed.strategy.children(rank))
        except DistributedError as err:
            seen["children_mismatch"] = str(err)

        (out / f"rank{rank}.json").write_text(json.dumps(seen))
        if rank == 1:
            train_step = Trainer.train_step

            def failing_step(self, images, labels, step):
                if step == 1:
                    raise RuntimeError("injected failure on rank 1")
                return train_step(self, images, labels, step)

            Trainer.train_step = failing_step
        Trainer(config("epochs=2", "max_steps=3"), out / "fail", world=world).fit()


if __name__ == "__main__":
    _worker(sys.argv[1])
