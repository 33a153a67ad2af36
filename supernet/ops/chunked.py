"""Parameters stored as blocks cut at every size a child can take.

A child runs the first k channels of each elastic weight. Kept as one parameter, such a weight gives a
small child a gradient as large as the widest one (autograd's slice backward writes the slice into a
zero tensor of the full size), and the optimizer then updates every element of it, momentum included.
Cut into blocks at the sizes children take, the smallest child runs on its first block as it is, a
larger one on a `cat` of the blocks it covers, and each gradient covers exactly what the child used:
blocks left out get no gradient, and optimizers skip them.

The blocks are ordinary parameters, so `.to()`, copies, pickling, optimizers and DDP need nothing
special. Outside the op a chunked tensor keeps its name and full shape: the state dict holds it whole
(checkpoints do not depend on the cuts), and reading the attribute assembles it.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor, nn


def normalised_cuts(sizes: Iterable[int] | None, full: int) -> tuple[int, ...]:
    """The increasing block ends along one dim: every size in (0, full) a child can take, then `full`."""
    return (*sorted({s for s in sizes or () if 0 < s < full}), full)


@dataclass(frozen=True)
class ChunkGrid:
    """How one tensor is cut: `cuts[d]` are the block ends along dim d (later dims are never cut)."""

    name: str
    shape: tuple[int, ...]
    cuts: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        for d, ends in enumerate(self.cuts):
            if list(ends) != sorted(set(ends)) or ends[-1] != self.shape[d] or ends[0] <= 0:
                raise ValueError(f"cuts {ends} of {self.name!r} (dim {d}) must increase to {self.shape[d]}")

    def block_name(self, index: tuple[int, ...]) -> str:
        if all(len(ends) == 1 for ends in self.cuts):  # never cut: the parameter keeps the tensor's name
            return self.name
        return "_".join((self.name, *map(str, index)))

    # Computed once: ops look blocks up on every forward.
    @cached_property
    def _blocks(self) -> tuple[tuple[str, tuple[slice, ...]], ...]:
        spans = [list(zip((0, *ends[:-1]), ends, strict=True)) for ends in self.cuts]
        return tuple((self.block_name(index), tuple(slice(*spans[d][i]) for d, i in enumerate(index)))
                     for index in itertools.product(*(range(len(ends)) for ends in self.cuts)))

    @cached_property
    def block_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._blocks)

    @cached_property
    def _name_grid(self) -> tuple:
        """Block names nested one tuple level per cut dim."""
        def nest(index: tuple[int, ...]):
            if len(index) == len(self.cuts):
                return self.block_name(index)
            return tuple(nest((*index, i)) for i in range(len(self.cuts[len(index)])))
        return nest(())

    @property
    def whole_sizes(self) -> tuple[int, ...]:
        """The full extent of every cut dim: the prefix that is the whole tensor."""
        return self.shape[: len(self.cuts)]

    def blocks(self) -> tuple[tuple[str, tuple[slice, ...]], ...]:
        """Every block's parameter name and its region of the full tensor, in row-major order."""
        return self._blocks

    def reached(self, sizes: tuple[int, ...]) -> tuple[str, ...]:
        """The blocks the prefix `sizes` reads from."""
        counts = [bisect_left(ends, s) + 1 for ends, s in zip(self.cuts, sizes, strict=True)]
        return tuple(self.block_name(index) for index in itertools.product(*map(range, counts)))

    def exact_block(self, sizes: tuple[int, ...]) -> str | None:
        """The block that is the whole prefix `sizes`, if one is."""
        if all(s == ends[0] for ends, s in zip(self.cuts, sizes, strict=True)):
            return self.block_name((0,) * len(self.cuts))
        return None

    def assemble(self, params: Mapping[str, Tensor], sizes: tuple[int, ...]) -> Tensor:
        """The prefix `[:sizes[0], :sizes[1], ...]` of the full tensor, differentiable in the blocks."""
        joined = self._join(params, sizes, self._name_grid, 0)
        for d, size in enumerate(sizes):
            if joined.shape[d] != size:  # a size between two cuts: the blocks' union, then its prefix
                joined = joined.narrow(d, 0, size)
        return joined

    def _join(self, params: Mapping[str, Tensor], sizes: tuple[int, ...], names, dim: int) -> Tensor:
        if dim == len(sizes):
            return params[names]
        count = bisect_left(self.cuts[dim], sizes[dim]) + 1  # blocks the prefix reaches into
        if count == 1:
            return self._join(params, sizes, names[0], dim + 1)
        return torch.cat([self._join(params, sizes, names[i], dim + 1) for i in range(count)], dim)


def split_into_blocks(grid: ChunkGrid, full: Tensor) -> dict[str, Tensor]:
    """`full` cut as `grid` says, each block a contiguous copy."""
    return {name: full[region].clone(memory_format=torch.contiguous_format) for name, region in grid.blocks()}


class ChunkedModule(nn.Module):
    """A module some of whose tensors are chunked: registered with `register_chunked`, read whole
    through a `ChunkedTensor` class attribute of the same name, run through `active` at the prefix the
    last `plan_chunks` fixed, written with `assign_`, and saved and loaded whole."""

    def register_chunked(self, name: str, value: Tensor, cuts: tuple[tuple[int, ...], ...]) -> None:
        """Store `value` as parameters `{name}_{i}[_{j}]`, cut along its leading dims at `cuts`."""
        grid = ChunkGrid(name, tuple(value.shape), cuts)
        for block, tensor in split_into_blocks(grid, value.detach()).items():
            self.register_parameter(block, nn.Parameter(tensor))
        self.__dict__.setdefault("_grids", {})[name] = grid

    def chunk_grids(self) -> Mapping[str, ChunkGrid]:
        return self.__dict__.get("_grids", {})

    def plan_chunks(self, sizes: Mapping[str, tuple[int, ...]]) -> None:
        """Fix the active prefix `sizes[name]` of each chunked tensor (ops call this from `set_active`):
        the blocks it reads and whether one block is the whole of it, so that forwards look nothing up."""
        grids = self.chunk_grids()
        sizes = {name: s for name, s in sizes.items() if name in grids}
        self._plan = {name: (s, grids[name].exact_block(s)) for name, s in sizes.items()}
        self._plan_blocks = tuple(block for name, s in sizes.items() for block in grids[name].reached(s))

    def active(self, name: str) -> Tensor:
        """The active prefix of chunked tensor `name`, differentiable in its blocks."""
        sizes, block = self._plan[name]
        if block is not None:
            return self._parameters[block]
        return self.chunk_grids()[name].assemble(self._parameters, sizes)

    def active_blocks(self) -> tuple[Tensor, ...]:
        """The blocks the active prefixes read: what a prepared weight depends on, besides buffers."""
        params = self._parameters
        return tuple(params[block] for block in self._plan_blocks)

    def blocks(self, name: str) -> tuple[Tensor, ...]:
        params = self._parameters
        return tuple(params[block] for block in self.chunk_grids()[name].block_names)

    def whole(self, name: str) -> Tensor:
        """Chunked tensor `name` assembled at full size: a read-only copy (an inference tensor)."""
        grid = self.chunk_grids()[name]
        with torch.inference_mode():
            return grid.assemble(self._parameters, grid.whole_sizes).clone()

    def whole_grad(self, name: str) -> Tensor | None:
        """The gradient of chunked tensor `name` at full size (zero over blocks without one), or None."""
        grid = self.chunk_grids()[name]
        grads = {block: self._parameters[block].grad for block, _ in grid.blocks()}
        if all(g is None for g in grads.values()):
            return None
        like = self._parameters[next(iter(grads))]
        whole = torch.zeros(grid.shape, dtype=like.dtype, device=like.device)
        for block, region in grid.blocks():
            if grads[block] is not None:
                whole[region] = grads[block]
        return whole

    def share_parameters(self, source: nn.Module) -> None:
        """Make `source`'s parameters this op's own (the same tensors): a chunked module's blocks with their
        cuts, or a plain module's whole tensors as single blocks."""
        if isinstance(source, ChunkedModule):
            grids, params = dict(source.chunk_grids()), source._parameters
        else:
            params = {}
            grids = {}
            for name, tensor in source.named_parameters(recurse=False):
                grids[name] = ChunkGrid(name, tuple(tensor.shape), ((tensor.shape[0],),))
                params[grids[name].block_name((0,))] = tensor
        for grid in self.chunk_grids().values():
            for block, _ in grid.blocks():
                del self._parameters[block]
        # Parameters first: while a name has a grid, reading it assembles blocks that must exist.
        self.__dict__["_grids"] = {}
        for grid in grids.values():
            for block, _ in grid.blocks():
                self.register_parameter(block, params[block])
        self.__dict__["_grids"] = grids
        self.plan_chunks({name: sizes for name, (sizes, _) in self._plan.items()})

    @torch.no_grad()
    def assign_(self, name: str, value: Tensor) -> None:
        """Write `value` into tensor `name` in place, whether chunked or a plain parameter or buffer."""
        grid = self.chunk_grids().get(name)
        if grid is None:
            getattr(self, name).copy_(value)
            return
        if tuple(value.shape) != grid.shape:
            raise ValueError(f"{name} has shape {grid.shape}, not {tuple(value.shape)}")
        for block, region in grid.blocks():
            self._parameters[block].copy_(value[region])

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, grid in self.chunk_grids().items():
            for block, _ in grid.blocks():
                del destination[prefix + block]
            with torch.no_grad():
                value = grid.assemble(self._parameters, grid.whole_sizes)
            destination[prefix + name] = value if keep_vars else value.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The state holds each chunked tensor whole: hand the parent its blocks, cut the same way.
        local = dict(state_dict)
        owners: dict[str, str | None] = {}  # block key -> whole key to report missing (None: reported)
        for name, grid in self.chunk_grids().items():
            key = prefix + name
            value = local.pop(key, None)
            mismatch = value is not None and tuple(value.shape) != grid.shape
            if mismatch:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                                  f"from checkpoint, the shape in current model is {torch.Size(grid.shape)}.")
            owners.update({prefix + block: None if mismatch else key for block, _ in grid.blocks()})
            if value is not None and not mismatch:
                local.update({prefix + block: value[region] for block, region in grid.blocks()})
        before = len(missing_keys)
        super()._load_from_state_dict(local, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        added = missing_keys[before:]
        del missing_keys[before:]
        for key in added:
            whole = owners.get(key, key)
            if whole is not None and whole not in missing_keys:
                missing_keys.append(whole)


class ChunkedTensor:
    """Class attribute that reads a chunked parameter (see `supernet.ops.chunked`) as one tensor.

    Each read assembles a new tensor, made under inference mode so that an in-place write to it fails
    loudly instead of being lost: write through `ChunkedModule.assign_`.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, op: ChunkedModule | None, owner: type | None = None):
        if op is None:
            return self
        if self.name not in op.__dict__.get("_grids", {}):
            # Not chunked (yet, or at all): nn.Module's own lookup answers (a parameter, None, or an error).
            raise AttributeError(self.name)
        return op.whole(self.name)


@torch.no_grad()
def assign_tensor(module: nn.Module, name: str, value: Tensor) -> None:
    """Write `value` into `module.<name>` in place, be it a dynamic op's chunked tensor or a plain one."""
    if isinstance(module, ChunkedModule):
        module.assign_(name, value)
    else:
        getattr(module, name).copy_(value)
