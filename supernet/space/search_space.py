"""`SearchSpace`: the set of children a supernet holds, and the operations the trainer and search need."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from supernet.space.arch import Arch, ArchError, BlockChoice, StageChoice
from supernet.space.layers import LayerSpec, conv_out
from supernet.space.spec import SpaceError, SpaceSpec, StageSpec, make_divisible


class SearchSpace:
    def __init__(self, spec: SpaceSpec):
        self.spec = spec

    # ----- construction
    @classmethod
    def from_dict(cls, node: Mapping[str, Any]) -> SearchSpace:
        return cls(SpaceSpec.from_dict(node))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        try:
            node = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as err:
            raise SpaceError(f"space file {path}: not valid YAML ({err})") from err
        if not isinstance(node, Mapping):
            raise SpaceError(f"space file {path}: expected a mapping at the top level")
        return cls.from_dict(node)

    def with_io(self, in_channels: int, num_classes: int) -> SearchSpace:
        """The same space for a dataset with other input channels or classes."""
        from dataclasses import replace

        return SearchSpace(replace(self.spec, in_channels=in_channels, num_classes=num_classes))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        return self.spec.stages

    # ----- channel arithmetic shared by the supernet, the layer plan and extraction
    def stage_channels(self, stage: int, width: float) -> int:
        return make_divisible(self.spec.stages[stage].channels * width, self.spec.divisor)

    def mid_channels(self, cin: int, expand: float) -> int:
        return make_divisible(round(cin * expand), self.spec.divisor)

    def se_channels(self, cmid: int) -> int:
        return make_divisible(cmid // self.spec.se_reduction, self.spec.divisor)

    # ----- extremes and sampling
    def max(self) -> Arch:
        return self._extreme(max)

    def min(self) -> Arch:
        return self._extreme(min)

    def _extreme(self, pick) -> Arch:
        stages = tuple(
            StageChoice(pick(s.widths), tuple(BlockChoice(pick(s.kernels), pick(s.expands))
                                              for _ in range(pick(s.depths))))
            for s in self.spec.stages
        )
        return Arch(pick(self.spec.resolutions), stages)

    def sample(self, rng: random.Random) -> Arch:
        stages = tuple(
            StageChoice(rng.choice(s.widths), tuple(self._sample_block(s, rng)
                                                    for _ in range(rng.choice(s.depths))))
            for s in self.spec.stages
        )
        return Arch(rng.choice(self.spec.resolutions), stages)

    @staticmethod
    def _sample_block(stage: StageSpec, rng: random.Random) -> BlockChoice:
        return BlockChoice(rng.choice(stage.kernels), rng.choice(stage.expands))

    def mutate(self, arch: Arch, rng: random.Random, p: float) -> Arch:
        """Resample each choice independently with probability p; new blocks are drawn at random."""
        resolution = rng.choice(self.spec.resolutions) if rng.random() < p else arch.resolution
        stages = []
        for spec, stage in zip(self.spec.stages, arch.stages, strict=True):
            width = rng.choice(spec.widths) if rng.random() < p else stage.width
            depth = rng.choice(spec.depths) if rng.random() < p else stage.depth
            blocks = []
            for j in range(depth):
                if j >= stage.depth:
                    blocks.append(self._sample_block(spec, rng))
                    continue
                old = stage.blocks[j]
                kernel = rng.choice(spec.kernels) if rng.random() < p else old.kernel
                expand = rng.choice(spec.expands) if rng.random() < p else old.expand
                blocks.append(BlockChoice(kernel, expand))
            stages.append(StageChoice(width, tuple(blocks)))
        return Arch(resolution, tuple(stages))

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        """Uniform crossover: each gene from either parent; block j from a parent that has block j."""
        stages = []
        for sa, sb in zip(a.stages, b.stages, strict=True):
            width = rng.choice((sa.width, sb.width))
            depth = rng.choice((sa.depth, sb.depth))
            blocks = []
            for j in range(depth):
                holders = [s.blocks[j] for s in (sa, sb) if j < s.depth]
                blocks.append(rng.choice(holders))
            stages.append(StageChoice(width, tuple(blocks)))
        return Arch(rng.choice((a.resolution, b.resolution)), tuple(stages))

    # ----- validation
    def validate(self, arch: Arch) -> Arch:
        """Return `arch` if it is a child of this space, else raise `ArchError` naming the bad field."""
        spec = self.spec
        _require_choice(arch, "resolution", arch.resolution, spec.resolutions)
        if len(arch.stages) != len(spec.stages):
            raise ArchError(f"arch {arch}: has {len(arch.stages)} stages, space '{spec.name}' has "
                            f"{len(spec.stages)}")
        for i, (stage_spec, stage) in enumerate(zip(spec.stages, arch.stages, strict=True)):
            _require_choice(arch, f"stage {i} width", stage.width, stage_spec.widths)
            _require_choice(arch, f"stage {i} depth", stage.depth, stage_spec.depths)
            for j, block in enumerate(stage.blocks):
                _require_choice(arch, f"stage {i} block {j} kernel", block.kernel, stage_spec.kernels)
                _require_choice(arch, f"stage {i} block {j} expand", block.expand, stage_spec.expands)
        return arch

    def parse(self, text: str) -> Arch:
        """Parse an arch string and check it belongs to this space."""
        return self.validate(Arch.parse(text))

    # ----- encodings and counts
    def encode(self, arch: Arch) -> list[float]:
        """A fixed-length one-hot vector (inactive block slots are all zero), for accuracy predictors."""
        spec = self.spec
        vec = _one_hot(arch.resolution, spec.resolutions)
        for stage_spec, stage in zip(spec.stages, arch.stages, strict=True):
            vec += _one_hot(stage.width, stage_spec.widths) + _one_hot(stage.depth, stage_spec.depths)
            for j in range(stage_spec.max_depth):
                if j < stage.depth:
                    block = stage.blocks[j]
                    vec += _one_hot(block.kernel, stage_spec.kernels)
                    vec += _one_hot(block.expand, stage_spec.expands)
                else:
                    vec += [0.0] * (len(stage_spec.kernels) + len(stage_spec.expands))
        return vec

    def size(self) -> int:
        """Number of distinct children."""
        total = len(self.spec.resolutions)
        for s in self.spec.stages:
            per_block = len(s.kernels) * len(s.expands)
            total *= len(s.widths) * sum(per_block**d for d in s.depths)
        return total

    def layers(self, arch: Arch) -> list[LayerSpec]:
        """The child's layer plan at concrete sizes (see `supernet.space.layers`)."""
        spec = self.spec
        res = arch.resolution
        plan = [LayerSpec("conv", res, spec.in_channels, 0, spec.stem.channels, spec.stem.kernel,
                          spec.stem.stride, act=spec.stem.act)]
        res = conv_out(res, spec.stem.stride)
        cin = spec.stem.channels
        if spec.first_block is not None:
            fb = spec.first_block
            plan.append(self._mbconv(res, cin, fb.channels, fb.kernel, fb.expand, fb.stride, fb.se, fb.act,
                                     residual=fb.stride == 1 and cin == fb.channels))
            res, cin = conv_out(res, fb.stride), fb.channels
        for i, (stage_spec, stage) in enumerate(zip(spec.stages, arch.stages, strict=True)):
            cout = self.stage_channels(i, stage.width)
            for j, block in enumerate(stage.blocks):
                stride = stage_spec.stride if j == 0 else 1
                plan.append(self._mbconv(res, cin, cout, block.kernel, block.expand, stride, stage_spec.se,
                                         stage_spec.act, residual=j > 0))
                res, cin = conv_out(res, stride), cout
        plan.append(LayerSpec("conv", res, cin, 0, spec.head.channels, 1, 1, act=spec.head.act))
        plan.append(LayerSpec("classifier", res, spec.head.channels, spec.head.feature, spec.num_classes,
                              act=spec.head.act))
        return plan

    def _mbconv(self, res: int, cin: int, cout: int, kernel: int, expand: float, stride: int, se: bool,
                act: str, residual: bool) -> LayerSpec:
        has_expand = expand != 1
        cmid = self.mid_channels(cin, expand) if has_expand else cin
        return LayerSpec("mbconv", res, cin, cmid, cout, kernel, stride, self.se_channels(cmid) if se else 0,
                         act, has_expand, residual)

    def params(self, arch: Arch) -> int:
        return sum(layer.params() for layer in self.layers(arch))

    def flops(self, arch: Arch) -> int:
        return sum(layer.flops() for layer in self.layers(arch))

    def describe(self) -> dict[str, Any]:
        """Human- and machine-readable summary of the choices."""
        spec = self.spec
        return {
            "name": spec.name,
            "resolutions": list(spec.resolutions),
            "stages": [
                {"channels": s.channels, "stride": s.stride, "se": s.se, "act": s.act,
                 "depth": list(s.depths), "kernel": list(s.kernels), "expand": list(s.expands),
                 "width": list(s.widths)}
                for s in spec.stages
            ],
            "children": self.size(),
        }


def _one_hot(value: float, choices: tuple) -> list[float]:
    return [1.0 if value == c else 0.0 for c in choices]


def _fmt(values: tuple) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def _require_choice(arch: Arch, where: str, value: float, choices: tuple) -> None:
    if value not in choices:
        raise ArchError(f"arch {arch}: {where} {value:g} is not one of {_fmt(choices)}")
