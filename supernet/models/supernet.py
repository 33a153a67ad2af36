"""The weight-sharing supernet: `set_active(arch)` runs one child in place; `extract(arch)` copies it out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from supernet.models.dynamic_blocks import DynamicInvertedResidual, SlotSizes
from supernet.models.static import activation, build_child, build_layer
from supernet.ops import DynamicOp, DynamicPointConv2d
from supernet.space import Arch, SearchSpace
from supernet.space.coverage import covering_archs


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        spec = space.spec
        widest = iter(space.layers(space.max()))
        # The stem, the fixed first block and the classifier never change size: they are plain layers.
        self.stem = build_layer(next(widest))
        self.first_block = build_layer(next(widest)) if spec.first_block is not None else None
        counts = channel_counts(space)
        self.stages = nn.ModuleList(
            nn.ModuleList(DynamicInvertedResidual(next(widest), stage.kernels, spec.kernel_transform,
                                                  counts.blocks[i, j])
                          for j in range(stage.max_depth))
            for i, stage in enumerate(spec.stages)
        )
        final = next(widest)
        self.final_expand = nn.Sequential(DynamicPointConv2d(final.cin, final.cout, in_sizes=counts.final_in),
                                          nn.BatchNorm2d(final.cout), activation(final.act))
        self.classifier = build_layer(next(widest), spec.head.dropout)
        self._init_weights()
        self.active_arch: Arch = space.max()
        self._active_blocks: list[nn.Module] = []
        self.set_active(self.active_arch)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def zero_init_residual_bn(self) -> None:
        """BigNAS initialisation: each residual block starts as the identity (its last BN's scale is 0)."""
        with torch.no_grad():
            for block in self.elastic_blocks():
                if block.residual:
                    bn = block.project[1]
                    bn.assign_("weight", torch.zeros(bn.num_features))

    def elastic_blocks(self) -> list[DynamicInvertedResidual]:
        return [block for stage in self.stages for block in stage]

    def set_active(self, arch: Arch) -> None:
        self.space.validate(arch)
        layers = self.space.layers(arch)
        offset = 2 if self.first_block is not None else 1
        blocks = [stage[j] for stage, depth in zip(self.stages, arch.depths, strict=True)
                  for j in range(depth)]
        for block, layer in zip(blocks, layers[offset:-2], strict=True):
            block.set_active(layer)
        self.final_expand[0].set_active(layers[-2].cin, layers[-2].cout)
        self._active_blocks = blocks
        self.active_arch = arch

    def active_modules(self) -> list[nn.Module]:
        """The modules the active child runs, in order, one per entry of `space.layers(arch)`."""
        head = [self.stem] + ([self.first_block] if self.first_block is not None else [])
        return [*head, *self._active_blocks, self.final_expand, self.classifier]

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        if self.first_block is not None:
            x = self.first_block(x)
        for block in self._active_blocks:
            x = block(x)
        return self.classifier(self.final_expand(x))

    def set_dropout(self, p: float) -> None:
        for m in self.classifier.modules():
            if isinstance(m, nn.Dropout):
                m.p = p

    @torch.no_grad()
    def extract(self, arch: Arch) -> nn.Sequential:
        """A plain-torch copy of the child `arch` (same outputs, no shared storage), in this net's mode."""
        previous = self.active_arch
        self.set_active(arch)
        try:
            param = next(self.parameters())
            # Moved before loading, so that weights are never rounded through float32 on the way.
            child = build_child(self.space.layers(arch), self.space.spec.head.dropout)
            child.to(device=param.device, dtype=param.dtype)
            for static, dynamic in zip(child, self.active_modules(), strict=True):
                static.load_state_dict(active_state_dict(dynamic))
            return child.train(self.training)
        finally:
            self.set_active(previous)


@dataclass(frozen=True)
class ChannelCounts:
    """Every channel count the children of a space run each elastic part at: where its weights are cut."""

    blocks: dict[tuple[int, int], SlotSizes]  # (stage, index in stage) -> the block's counts
    final_in: tuple[int, ...]  # input channels of the final expand conv


def channel_counts(space: SearchSpace) -> ChannelCounts:
    """Read from the layer plans of the children that cover every layer (`supernet.space.coverage`), at
    one resolution: channel counts do not depend on it."""
    blocks: dict[tuple[int, int], tuple[set[int], ...]] = {}
    final_in: set[int] = set()
    offset = 2 if space.spec.first_block is not None else 1
    for arch in covering_archs(space, space.spec.resolutions[:1]):
        layers = space.layers(arch)
        slots = [(i, j) for i, stage in enumerate(arch.stages) for j in range(len(stage.blocks))]
        for slot, layer in zip(slots, layers[offset:-2], strict=True):
            for counts, value in zip(blocks.setdefault(slot, (set(), set(), set(), set())),
                                     (layer.cin, layer.cmid, layer.cout, layer.se), strict=True):
                counts.add(value)
        final_in.add(layers[-2].cin)
    return ChannelCounts({slot: SlotSizes(*(tuple(sorted(c - {0})) for c in counts))
                          for slot, counts in blocks.items()}, tuple(sorted(final_in)))


def active_state_dict(module: nn.Module) -> dict[str, Tensor]:
    """`module`'s state as its static twin names it: dynamic ops give their active slices."""
    state: dict[str, Tensor] = {}

    def visit(m: nn.Module, prefix: str) -> None:
        if isinstance(m, DynamicOp):
            state.update({prefix + k: v for k, v in m.active_state().items()})
            return
        for name, tensor in [*m._parameters.items(), *m._buffers.items()]:
            if tensor is not None and name not in m._non_persistent_buffers_set:
                state[prefix + name] = tensor.detach()
        inactive = m.inactive_children() if isinstance(m, DynamicInvertedResidual) else ()
        for name, child in m._modules.items():
            if child is not None and name not in inactive:
                visit(child, f"{prefix}{name}.")

    visit(module, "")
    return state

