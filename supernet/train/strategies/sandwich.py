"""BigNAS sandwich rule: the max child learns from labels, the min and N random children from the
max child's detached predictions (in-place distillation); one optimizer step for all of them."""

from __future__ import annotations

from supernet.train.optim import Segment, segment_from_config
from supernet.train.strategies.base import ChildTask, Strategy, step_rng


class Sandwich(Strategy):
    name = "sandwich"

    def __init__(self, space, cfg, steps_per_epoch: int) -> None:
        super().__init__(space, cfg, steps_per_epoch)
        # Read once here: the step itself touches no config.
        soft = "first" if self.cfg.distill == "kl" else None
        self.student = {"label_weight": 0.0 if soft else 1.0, "distill_weight": 1.0 if soft else 0.0,
                        "distill_from": soft}
        self.max_dropout, self.num_random = bool(self.cfg.max_dropout), int(self.cfg.num_random)

    def total_steps(self) -> int:
        return self.run_cfg.epochs * self.steps_per_epoch

    def segments(self) -> list[Segment]:
        schedule = self.run_cfg.schedule
        return [segment_from_config(schedule, 0, self.total_steps(), self.steps_per_epoch,
                                    self.run_cfg.optim.lr, schedule.warmup_epochs)]

    def children(self, step: int) -> list[ChildTask]:
        rng = step_rng(self.seed, step)
        tasks = [ChildTask(self.space.max(), dropout=self.max_dropout),
                 ChildTask(self.space.min(), **self.student)]
        tasks += [ChildTask(self.space.sample(rng), **self.student) for _ in range(self.num_random)]
        return tasks
