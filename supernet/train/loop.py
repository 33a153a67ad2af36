"""The training loop, top to bottom: setup, the step, validation, checkpoints, resume.

It knows nothing of any particular strategy: a `Strategy` says which children run at step t and how
each is supervised. The hot path keeps the GPU busy: uint8 batches are copied with non_blocking from
pinned memory, augmentation and normalisation run on the device, and nothing inside the step reads a
value back to the host (losses are summed on the device and read every `log.every` steps).

Under torchrun the same loop trains one replica per process; `self.parallel` (supernet/train/distributed.py)
does what differs: the DDP forward, one gradient reduction per step, each rank's shard of the data, and
the values ranks must agree on. With a single process it is `SingleProcess`, whose methods do nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import Tensor

from supernet.config import space_from_config
from supernet.data import derive_seed, make_loader
from supernet.data.settings import batch_augment
from supernet.errors import SupernetError
from supernet.models import Supernet
from supernet.progress import progress_bar, progress_enabled
from supernet.run.bn_recalibration import resize_batch
from supernet.run.child_eval import calibration_batches, calibration_seed, child_accuracy, load_run_data
from supernet.run.device import configure_backends, resolve_device, resolve_precision
from supernet.run.directory import CheckpointError, load_checkpoint, save_checkpoint, write_run_files
from supernet.run.files import atomic_write_text, remove_stale_temporaries, versions
from supernet.train.distributed import World, current_world, data_parallel, distributed_session
from supernet.train.interrupt import StopRequest
from supernet.train.losses import child_loss
from supernet.train.optim import build_optimizer, learning_rate, set_lr
from supernet.train.reporting import MetricsLog, epoch_table
from supernet.train.strategies import ChildTask, Strategy, build_strategy


class TrainingDiverged(SupernetError):
    """The loss became NaN/inf or exceeded `guard.max_loss`."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    interrupted: str | None = None
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)


class Trainer:
    def __init__(self, cfg: DictConfig, run_dir: Path, resume: bool = False, overrides: list[str] = (),
                 console: Console | None = None, world: World | None = None) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.world = world or current_world()
        self.is_main = self.world.is_main  # the only process that writes files and draws progress bars
        self.console = console or Console()
        self.device = resolve_device(self.world.device_name(cfg.device))
        self.precision = resolve_precision(cfg.precision, self.device)
        configure_backends(self.device, cfg.threads)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        torch.manual_seed(self.world.rank_seed(cfg.seed))  # dropout's generator; its state is checkpointed

        self.data = load_run_data(cfg, training_device=self.device.type)
        space = space_from_config(cfg).with_io(self.data.in_channels, self.data.num_classes)
        # The saved config describes the space and data as trained (channels, classes, decode size).
        with _writable(cfg):
            cfg.space.in_channels, cfg.space.num_classes = self.data.in_channels, self.data.num_classes
            if cfg.data.name == "imagefolder":
                cfg.data.image_size = self.data.image_size
        self.model = Supernet(space)
        if cfg.zero_init_residual:
            self.model.zero_init_residual_bn()
        self.model.to(self.device, memory_format=self.memory_format)
        self.parallel = data_parallel(self.world, cfg, self.device)
        self.model = self.parallel.prepare(self.model)
        self.dropout = space.spec.head.dropout
        # The step reads plain attributes, not the config.
        self.seed, self.max_loss = int(cfg.seed), float(cfg.guard.max_loss)
        self.label_smoothing, self.temperature = cfg.label_smoothing, cfg.strategy.distill_temperature
        self.grad_clip = cfg.optim.grad_clip

        # data.batch_size is per process: an optimizer step sees batch_size x world size images.
        self.batch_size = cfg.data.batch_size
        self.global_batch = self.batch_size * self.world.size
        self.steps_per_epoch = len(self.data.train) // self.global_batch
        if self.steps_per_epoch == 0:
            raise SupernetError(f"data.batch_size={self.batch_size} x {self.world.size} process(es) is "
                                f"larger than the training split ({len(self.data.train)} images); lower it "
                                "or use more data")
        self.strategy: Strategy = build_strategy(cfg, space, self.steps_per_epoch)
        self.total_steps = self.strategy.total_steps()
        self.segments = self.strategy.segments()
        self.optimizer = build_optimizer(self.model, cfg.optim, self.device)
        self.scaler = self.precision.grad_scaler()
        self.augment = batch_augment(cfg.data, self.data)
        self.generator = torch.Generator(device=self.device)
        self.calib = calibration_batches(self.data.train, cfg.val.calib_images, cfg.val.calib_batch_size,
                                         calibration_seed(cfg.seed), self.data.mean, self.data.std,
                                         self.device, self.memory_format)
        # best.pt ranks (selection group, mean val accuracy): a later group, e.g. a later shrinking
        # phase that validates smaller children, always supersedes an earlier one.
        self.step, self.best, self.lr_scale, self.rollbacks = 0, (-1, -1.0), 1.0, 0
        self.last_val: dict[str, float] = {}
        if self.is_main:
            self._remove_temporaries()
        if resume:
            self._restore(self.run_dir / "checkpoints" / "last.pt")
        self.replica = self.parallel.wrap(self.model)  # what the step calls: the model, or its DDP wrapper
        if self.is_main:
            write_run_files(self.run_dir, cfg, list(overrides), resumed=resume)
            tb = self.run_dir / "tensorboard" if cfg.log.tensorboard else None
            self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", tb,
                                      resumed_at=self.step if resume else None)
        if self.data.skipped:
            self._event(f"left out {len(self.data.skipped)} unreadable image(s) (data.bad_images=skip), "
                        f"the first: {self.data.skipped[0]}")

    def _remove_temporaries(self) -> None:
        """Temp files of a killed run: every one in checkpoints/ (only the run's trainer writes there, and
        this is it), only those of writers that are gone beside config.yaml."""
        removed = remove_stale_temporaries(self.run_dir / "checkpoints", every=True)
        removed += remove_stale_temporaries(self.run_dir)
        if removed:
            self.console.print(f"removed {len(removed)} temporary file(s) left by an interrupted run: "
                               + ", ".join(p.name for p in removed), highlight=False)

    # ------------------------------------------------------------------ the step
    def train_step(self, images: Tensor, labels: Tensor, step: int) -> Tensor:
        """One optimizer step over the strategy's children; returns the per-child losses (on device)."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        self.generator.manual_seed(self.world.rank_seed(derive_seed(self.seed, step)))
        x = self.augment(images, self.generator)
        set_lr(self.optimizer, self.lr_scale * learning_rate(step, self.segments))
        self.optimizer.zero_grad(set_to_none=True)

        tasks = self.strategy.children(step)
        self.parallel.check_children(step, tasks)
        first: Tensor | None = None
        teacher_cache: dict[int, Tensor] = {}
        losses = []
        for i, task in enumerate(tasks):
            self.model.set_active(task.arch)
            self.model.set_dropout(self.dropout if task.dropout else 0.0)
            xi = resize_batch(x, task.arch.resolution).contiguous(memory_format=self.memory_format)
            with self.grad_sync(last=i == len(tasks) - 1), self.precision.autocast():
                logits = self.forward(xi)
                targets = first if task.distill_from == "first" else None
                if task.distill_from == "teacher":
                    targets = self._teacher_logits(xi, task, teacher_cache)
                loss = child_loss(task, logits, labels, targets, self.label_smoothing, self.temperature)
                self.scaler.scale(loss).backward()
            if i == 0:
                first = logits.detach()
            losses.append(loss.detach())

        self.scaler.unscale_(self.optimizer)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip, foreach=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return torch.stack(losses)

    def forward(self, x: Tensor) -> Tensor:
        return self.replica(x)

    def grad_sync(self, last: bool) -> contextlib.AbstractContextManager:
        """Where gradients are reduced across processes: only in the step's last backward pass."""
        return self.parallel.grad_sync(last)

    @torch.no_grad()
    def _teacher_logits(self, x: Tensor, task: ChildTask, cache: dict[int, Tensor]) -> Tensor:
        if self.strategy.teacher is None:
            raise RuntimeError(f"strategy {self.strategy.name} asks for a teacher but has none")
        key = task.arch.resolution
        if key not in cache:
            cache[key] = self.strategy.teacher(x).float()
        return cache[key]

    # ------------------------------------------------------------------ the run
    def fit(self) -> TrainResult:
        cfg = self.cfg
        stop_at = min(self.total_steps, cfg.max_steps or self.total_steps)
        log_every = max(1, cfg.log.every)
        # On CPU reading the loss costs nothing, so the guard checks every step; on CUDA it checks at
        # logging time only, to keep the step free of host syncs.
        guard_every = 1 if self.device.type == "cpu" else log_every
        bar = progress_bar(stop_at, self.step, self.is_main and progress_enabled(cfg.log.progress))
        window_loss, window_steps, window_start = None, 0, time.perf_counter()
        result = TrainResult(self.run_dir, self.step, self.step // self.steps_per_epoch)
        stopped = None  # the signal every rank agreed to stop on
        with StopRequest() as stop:
            while self.step < stop_at and stopped is None:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                sampler = self.parallel.train_sampler(self.data.train, self.batch_size, cfg.seed, epoch)
                loader = make_loader(self.data.train, self.batch_size, shuffle=True, seed=cfg.seed,
                                     epoch=epoch, num_workers=cfg.data.num_workers,
                                     pin_memory=self.device.type == "cuda", drop_last=True, sampler=sampler,
                                     first_step=epoch * self.steps_per_epoch, skip_batches=offset)
                rolled_back = False
                for images, labels in loader:
                    for event in self.strategy.begin_step(self.step, self.model):
                        self._event(event)
                    self.parallel.share_teacher(self.strategy.teacher)
                    if self.strategy.needs_new_optimizer(self.step):
                        self.optimizer = build_optimizer(self.model, cfg.optim, self.device)
                    losses = self.train_step(images, labels, self.step)
                    self.step += 1
                    stopped = self.parallel.agree_stop(stop.requested, self.step, guard_every)
                    window_loss = losses if window_loss is None else window_loss + losses
                    window_steps += 1
                    bar.update(1)
                    if self.step % guard_every == 0 and not self._guard(losses):
                        rolled_back = True  # self.step moved back to the last checkpoint's
                        window_loss, window_steps, window_start = None, 0, time.perf_counter()
                        bar.reset(stop_at)
                        bar.update(self.step)
                        break
                    # A window only sums steps with as many children (phases may change the count).
                    if (self.step % log_every == 0 or self.step == stop_at
                            or len(self.strategy.children(self.step)) != len(losses)):
                        seconds = time.perf_counter() - window_start
                        self._log(window_loss / window_steps, window_steps, seconds, bar)
                        window_loss, window_steps, window_start = None, 0, time.perf_counter()
                    if self.step >= stop_at or stopped is not None:
                        break
                    if cfg.checkpoint_every_steps and self.step % cfg.checkpoint_every_steps == 0:
                        self.save("last")
                    if self.step % self.steps_per_epoch == 0:
                        break
                at_epoch_end = self.step % self.steps_per_epoch == 0 and self.step > 0
                if at_epoch_end and not rolled_back and stopped is None:
                    self._end_of_epoch(self.step // self.steps_per_epoch)
            bar.close()
            result.interrupted = stopped
        self.save("last")
        ended_mid_epoch = self.step % self.steps_per_epoch != 0 or not self.last_val
        if result.interrupted is None and ended_mid_epoch:
            self.last_val = self.validate(self.step // self.steps_per_epoch, split="val")
        result.step, result.epoch, result.val = self.step, self.step // self.steps_per_epoch, self.last_val
        if result.interrupted is None and self.step >= self.total_steps:
            result.test = self.validate(result.epoch, split="test")
        self._finish(result)
        return result

    def _end_of_epoch(self, epoch: int) -> None:
        if epoch % self.cfg.val.every_epochs == 0 or self.step >= self.total_steps:
            self.last_val = self.validate(epoch, split="val")
            mean_acc = sum(self.last_val.values()) / len(self.last_val)
            score = (self.strategy.selection_group(self.step), mean_acc)
            if score > self.best:
                self.best = score
                self.save("best")
        self.save("last")

    # ------------------------------------------------------------------ evaluation and logs
    def validate(self, epoch: int, split: str) -> dict[str, float]:
        """BN-recalibrated top-1 of the strategy's evaluation children on `split` (val or test)."""
        dataset = self.data.val if split == "val" else self.data.test
        accs, rows = {}, []
        shard = self.parallel.eval_shard(len(dataset))  # each rank evaluates its share of the images
        for name, arch in self.strategy.eval_children(self.step, self.cfg.val.middle_children):
            loader = make_loader(dataset, self.cfg.val.batch_size, shuffle=False, seed=self.cfg.seed, epoch=0,
                                 num_workers=self.cfg.data.num_workers,
                                 pin_memory=self.device.type == "cuda", drop_last=False, sampler=shard)
            acc = child_accuracy(self.model, arch, self.calib, loader, self.data.mean, self.data.std,
                                 self.device, self.memory_format, self.precision)
            accs[name] = acc = self.parallel.accuracy(acc, shard)
            space = self.model.space
            rows.append({"child": name, "acc": acc, "params": space.params(arch), "flops": space.flops(arch),
                         "arch": str(arch)})
        self.model.train()
        if self.is_main:
            extra = self.strategy.describe(self.step)
            self.console.print(epoch_table(epoch, self.step, rows, {"split": split, **extra}))
            self.metrics.write({"step": self.step, "epoch": epoch, split: accs, **extra,
                                "calibration": self.calib.digest})
        return accs

    def _log(self, mean_losses: Tensor, steps: int, seconds: float, bar) -> None:
        values = self.parallel.mean(mean_losses).tolist()  # the one host sync of a logging window
        lr = self.optimizer.param_groups[0]["lr"]
        images_per_s = steps * self.global_batch / max(seconds, 1e-9)
        record = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "loss": sum(values),
                  "loss_first": values[0], "loss_children": values, "lr": lr,
                  "images_per_s": images_per_s, **self.strategy.describe(self.step)}
        bar.set_postfix(loss=f"{sum(values):.3f}", img_s=f"{images_per_s:.0f}", refresh=False)
        if self.is_main:
            self.metrics.write(record)

    def _event(self, message: str) -> None:
        if self.is_main:
            self.console.print(f"[bold]step {self.step}:[/] {message}")
            self.metrics.write({"step": self.step, "event": message})

    def _guard(self, losses: Tensor) -> bool:
        """False (after rolling back) when the loss went bad; raises when it should stop."""
        total = float(self.parallel.mean(losses).sum())  # every rank decides alike
        if math.isfinite(total) and total <= self.max_loss:
            return True
        guard = self.cfg.guard
        where = f"step {self.step} (loss {total:.4g}, lr {self.optimizer.param_groups[0]['lr']:.3g})"
        last = self.run_dir / "checkpoints" / "last.pt"
        if not last.is_file():
            raise TrainingDiverged(f"loss diverged at {where}, before any checkpoint was written; start "
                                   "again with a lower optim.lr (or a higher guard.max_loss)")
        if guard.action == "rollback" and self.rollbacks < guard.max_rollbacks:
            # The count and the lr scale are the guard's, not the checkpoint's: were they reloaded with it,
            # every rollback would restore the values saved before it, and the rollbacks would never end.
            rollbacks, lr_scale = self.rollbacks + 1, self.lr_scale * 0.5
            self._restore(last)
            self.rollbacks, self.lr_scale = rollbacks, lr_scale
            message = (f"loss diverged at {where}; rollback {rollbacks} of {guard.max_rollbacks}: back to "
                       f"step {self.step} with lr x{lr_scale:g}")
            if self.is_main:
                self.console.print(f"[bold]step {self.step}:[/] {message}")
                self.metrics.rewind(self.step, message)
            return False
        if guard.action == "rollback":
            raise TrainingDiverged(f"loss diverged at {where} after {self.rollbacks} rollback(s) to {last} "
                                   f"(guard.max_rollbacks={guard.max_rollbacks}, lr already "
                                   f"x{self.lr_scale:g}); resume it with a lower optim.lr: supernet train "
                                   f"--resume {self.run_dir} optim.lr=...")
        raise TrainingDiverged(f"loss diverged at {where}; the last good checkpoint is {last} "
                               "(resume it with a lower optim.lr, or set guard.action=rollback)")

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "strategy": self.strategy.state_dict(), "rng": rng,
                 "step": self.step, "best": list(self.best), "lr_scale": self.lr_scale,
                 "rollbacks": self.rollbacks, "global_batch": self.global_batch}
        per_rank = self.parallel.gather(rng)  # dropout streams differ between ranks: keep each one
        if per_rank is not None:
            state["rng_per_rank"] = per_rank
        return state

    def save(self, which: str) -> None:
        state = self.state()  # on every rank: it gathers their random states
        if not self.is_main:
            return
        meta = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "val": self.last_val,
                "space": self.model.space.name, "strategy": self.strategy.name,
                "total_steps": self.total_steps, "world_size": self.world.size,
                "global_batch": self.global_batch, "versions": versions(), "time": time.time(),
                **self.strategy.describe(self.step)}
        save_checkpoint(self.run_dir / "checkpoints" / f"{which}.pt", state, meta)

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        saved_batch = state.get("global_batch", self.global_batch)
        if saved_batch != self.global_batch:
            raise CheckpointError(
                f"checkpoint {path} was trained with a global batch of {saved_batch} images per step; this "
                f"run has {self.batch_size} x {self.world.size} process(es) = {self.global_batch}. Set "
                f"data.batch_size={saved_batch // self.world.size} (when it divides) to keep the step "
                "count, schedule and data order of the run")
        try:
            self.model.load_state_dict(state["model"])
            self.strategy.load_state_dict(state["strategy"])
            self.optimizer = build_optimizer(self.model, self.cfg.optim, self.device)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.step, self.best = int(state["step"]), (int(state["best"][0]), float(state["best"][1]))
            self.lr_scale, self.rollbacks = float(state["lr_scale"]), int(state["rollbacks"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} does not match this run's config "
                                  f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
        rng = self.world.own_rng(state)
        if rng is None:  # resumed on more processes than saved: this rank starts a fresh dropout stream
            torch.manual_seed(self.world.rank_seed(derive_seed(self.seed, self.step)))
            return
        torch.set_rng_state(rng["torch"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)

    def _finish(self, result: TrainResult) -> None:
        if not self.is_main:
            return
        summary = {"step": result.step, "epoch": result.epoch, "interrupted": result.interrupted,
                   "val": result.val, "test": result.test, "calibration": self.calib.digest}
        self.metrics.write({"final": summary})
        self.metrics.close()
        atomic_write_text(self.run_dir / "results.json", json.dumps(summary, indent=2) + "\n")


@contextlib.contextmanager
def _writable(cfg: DictConfig):
    was = OmegaConf.is_struct(cfg)
    OmegaConf.set_struct(cfg, False)
    try:
        yield
    finally:
        OmegaConf.set_struct(cfg, was)


def train(cfg: DictConfig, run_dir: Path, resume: bool = False, overrides: list[str] = ()) -> TrainResult:
    """Train a supernet as `cfg` says, writing everything into `run_dir`.

    Under torchrun every process calls this with the same arguments (the same `run_dir`); each trains a
    replica on its shard of every batch, and rank 0 alone writes."""
    with distributed_session(cfg) as world:
        return Trainer(cfg, run_dir, resume=resume, overrides=list(overrides), world=world).fit()
