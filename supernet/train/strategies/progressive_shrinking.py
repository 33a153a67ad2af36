"""Once-for-All progressive shrinking: train the full network, then make one dimension after another
elastic, each phase distilling from the full network frozen at the end of the first phase.

The phases come from YAML (`configs/strategy/progressive_shrinking.yaml`, see `phases.py`); this class
places them on the step axis and does what happens between them:

- entering phase 1 (the end of phase 0): the max child is extracted as plain torch layers and frozen;
  it is the teacher of every later phase (loss = CE(labels) + distill_weight · KD(teacher));
- entering a phase with `sort_channels`: channels are sorted by importance (`sort_channels(model)`),
  so that the phase's smaller children start from the most useful channels;
- a fresh optimizer at each phase start (OFA's habit, and required after sorting: momentum buffers are
  indexed by channel); `fresh_optimizer: after_sort` limits it to the phases that sort.

Within a phase each step trains `children_per_step` children drawn from the phase's sub-space by
`step_rng(seed, step)`, so the children of a step do not depend on how the run was interrupted.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from supernet.models import build_child
from supernet.models.sorting import sort_channels
from supernet.space import Arch, SearchSpace
from supernet.train.optim import Segment, segment_from_config
from supernet.train.strategies.base import ChildTask, Strategy, step_rng
from supernet.train.strategies.phases import PhaseConfigError, PhaseSpan, parse_phases, place_phases

_FRESH_OPTIMIZER = ("every_phase", "after_sort")


class FrozenTeacher(nn.Module):
    """A plain-torch child that never trains: eval mode for good (BN statistics cannot drift, dropout is
    off), no parameter asks for a gradient, and the forward records no graph."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ProgressiveShrinking(Strategy):
    name = "progressive_shrinking"

    def __init__(self, space: SearchSpace, cfg: DictConfig, steps_per_epoch: int) -> None:
        super().__init__(space, cfg, steps_per_epoch)
        phases = parse_phases(OmegaConf.to_container(self.cfg.phases, resolve=True), space, cfg.optim.lr)
        self.spans: list[PhaseSpan] = place_phases(phases, space, steps_per_epoch)
        self.fresh_optimizer = self.cfg.fresh_optimizer
        if self.fresh_optimizer not in _FRESH_OPTIMIZER:
            raise PhaseConfigError(f"strategy.fresh_optimizer={self.fresh_optimizer!r}: choose "
                                   f"{' or '.join(_FRESH_OPTIMIZER)}")
        self.dropout = self.cfg.dropout
        self.teacher: FrozenTeacher | None = None
        self.entered = -1  # the last phase whose entry work (teacher, sorting) is done
        self.steps_done = 0  # steps done once the step last begun has run (what a checkpoint holds)
        self._teacher_layout_done = False

    # ------------------------------------------------------------------ where a step falls
    def span_of(self, step: int) -> PhaseSpan:
        """The phase that trains optimizer step `step` (steps past the end belong to the last phase)."""
        for span in self.spans:
            if step < span.end:
                return span
        return self.spans[-1]

    def _trained_span(self, step: int) -> PhaseSpan:
        # `describe` and `eval_children` receive the number of steps done: report the phase that did them.
        return self.span_of(max(0, step - 1))

    # ------------------------------------------------------------------ the interface
    def total_steps(self) -> int:
        return self.spans[-1].end

    def segments(self) -> list[Segment]:
        return [segment_from_config(self.run_cfg.schedule, span.start, span.steps, self.steps_per_epoch,
                                    span.phase.lr, span.phase.warmup_epochs) for span in self.spans]

    def children(self, step: int) -> list[ChildTask]:
        span = self.span_of(step)
        rng = step_rng(self.seed, step)
        weight = span.phase.distill_weight
        supervision = {"distill_weight": weight, "distill_from": "teacher" if weight else None}
        return [ChildTask(span.space.sample(rng), label_weight=1.0, dropout=self.dropout, **supervision)
                for _ in range(span.phase.children_per_step)]

    def begin_step(self, step: int, model: nn.Module) -> list[str]:
        model = getattr(model, "module", model)  # a DistributedDataParallel wrapper holds the supernet
        events = []
        self.steps_done = step + 1
        target = self.span_of(step).index
        while self.entered < target:
            self.entered += 1
            events += self._enter(self.spans[self.entered], model)
        if self.teacher is not None and not self._teacher_layout_done:
            self._match_layout(model)
        return events

    def needs_new_optimizer(self, step: int) -> bool:
        span = self.span_of(step)
        if step != span.start or span.index == 0:
            return False  # the loop has just built the first phase's optimizer
        return self.fresh_optimizer == "every_phase" or span.phase.sort_channels

    def describe(self, step: int) -> dict[str, Any]:
        span = self._trained_span(step)
        return {"phase": span.index, "phase_name": span.phase.name}

    def selection_group(self, step: int) -> int:
        return self._trained_span(step).index

    def eval_children(self, step: int, middle: int) -> list[tuple[str, Arch]]:
        """Max, min and `middle` fixed children of the phase that trained the last step (duplicates,
        such as every child of the full-network phase, are evaluated once, under their first name).
        The middle children come from the same seed as the base class's, so a phase whose choices are
        the whole space validates exactly the children another strategy would."""
        sub = self._trained_span(step).space
        rng = random.Random(f"middle:{self.seed}")
        named = [("max", sub.max()), ("min", sub.min())]
        named += [(f"mid{i}", sub.sample(rng)) for i in range(middle)]
        seen: set[Arch] = set()
        unique = []
        for name, arch in named:
            if arch not in seen:
                seen.add(arch)
                unique.append((name, arch))
        return unique

    # ------------------------------------------------------------------ between phases
    def _enter(self, span: PhaseSpan, model: nn.Module) -> list[str]:
        phase = span.phase
        epochs = span.steps / self.steps_per_epoch
        events = [f"phase {span.index}/{len(self.spans) - 1} '{phase.name}': {phase.summary()}; "
                  f"children_per_step {phase.children_per_step}, distill_weight {phase.distill_weight:g}, "
                  f"lr {phase.lr:g}, steps {span.start}-{span.end - 1} ({epochs:.3g} epochs)"]
        if span.index > 0 and self.teacher is None and self._needs_teacher():
            self.teacher = FrozenTeacher(model.extract(self.space.max()))
            self._teacher_layout_done = False
            events.append(f"teacher: the max child {self.space.max()} frozen as trained by "
                          f"'{self.spans[0].phase.name}'")
        if phase.sort_channels:
            report = sort_channels(model)
            counts = ", ".join(f"{count} {part}" for part, count in report.items())
            events.append(f"sorted channels by importance: {counts}")
        return events

    def _needs_teacher(self) -> bool:
        return any(span.phase.distill_weight for span in self.spans[1:])

    def _match_layout(self, model: nn.Module) -> None:
        """Give the teacher the supernet's device and memory format (its inputs are in that format)."""
        # Only a weight with several input channels and a spatial extent shows its format; where none
        # does (1x1 and depthwise convolutions), both formats are the same memory and either will do.
        channels_last = any(p.ndim == 4 and not p.is_contiguous()
                            and p.is_contiguous(memory_format=torch.channels_last)
                            for p in model.parameters())
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.teacher.to(device=next(model.parameters()).device, memory_format=layout)
        self._teacher_layout_done = True

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """The phase entered so far, how far into it the run is, and the teacher's weights: after phase 0
        the supernet keeps changing, so the teacher cannot be extracted again on resume. (Where a step
        falls is a function of the step, which the loop saves; the rest is here.)"""
        span = self.spans[max(0, self.entered)]
        return {"phase": self.entered, "phase_name": span.phase.name, "steps_done": self.steps_done,
                "phase_steps_done": max(0, self.steps_done - span.start),
                "teacher": None if self.teacher is None else self.teacher.net.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        entered = int(state["phase"])
        if not -1 <= entered < len(self.spans):
            raise ValueError(f"the checkpoint is in phase {entered}; this config has {len(self.spans)}")
        self.entered, self.steps_done = entered, int(state["steps_done"])
        self.teacher, self._teacher_layout_done = None, False
        if state["teacher"] is not None:
            net = build_child(self.space.layers(self.space.max()), self.space.spec.head.dropout)
            net.load_state_dict(state["teacher"])
            device = next(iter(state["teacher"].values())).device
            self.teacher = FrozenTeacher(net.to(device))
