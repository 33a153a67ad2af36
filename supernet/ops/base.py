"""What every dynamic op shares: an active size, chunked weights (`supernet.ops.chunked`), its static
twin, and a cache of its prepared weight.

Why the cache: in evaluation nothing changes between calls with the same active size, yet joining
blocks, making contiguous and (for kernels) transforming the weight would otherwise be redone on every
forward. That fixed cost is what makes a naive supernet child slower than its extracted twin at small
batches.
The cache is used only when no gradient is being recorded for its sources (the blocks the active size
reads, and buffers). It is keyed by the active size and by each source's version counter (which every
in-place update bumps: optimizer steps, `load_state_dict`, channel sorting) and data pointer (which
changes when a parameter is replaced, by `load_state_dict(assign=True)` or an assignment to `.data`,
neither of which bumps a version).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from supernet.ops.chunked import ChunkedModule


class DynamicOp(ChunkedModule):
    """Base class of the elastic ops; subclasses define `active_state()` and `to_static()`."""

    # Class-level defaults, so subclasses that also inherit a torch module need not call this __init__.
    _cache_key: tuple | None = None
    _cache_value: tuple[Tensor, ...] = ()
    _cache_alive: tuple[Tensor, ...] = ()

    def active_state(self) -> dict[str, Tensor]:
        """Tensors of the active sub-op, named and shaped as in its static twin's `state_dict()`."""
        raise NotImplementedError

    def to_static(self) -> nn.Module:
        """A plain torch module holding copies of the active weights."""
        raise NotImplementedError

    def cached(self, config: tuple, sources: tuple[Tensor, ...], make: Callable[[], tuple[Tensor, ...]]
               ) -> tuple[Tensor, ...]:
        """`make()`, memoised while no gradient flows to `sources` and they and `config` are unchanged."""
        if torch.is_grad_enabled() and any(s.requires_grad for s in sources):
            return make()
        try:
            key = (config, *[s._version for s in sources], *[s.data_ptr() for s in sources])
        except RuntimeError:  # parameters made under inference_mode keep no version counter to key on
            return make()
        if key != self._cache_key:
            # Built as ordinary tensors even under inference_mode, so that a later forward outside it
            # (a frozen teacher under plain no_grad, say) may still use them.
            with torch.inference_mode(False), torch.no_grad():
                self._cache_value = tuple(t.contiguous() for t in make())
                # Holding the keyed storages keeps the allocator from handing their addresses to a
                # replacement tensor, which would then look unchanged to the data-pointer check.
                self._cache_alive = tuple(s.detach() for s in sources)
            self._cache_key = key
        return self._cache_value

    def clear_cache(self) -> None:
        self._cache_key, self._cache_value, self._cache_alive = None, (), ()

    def __getstate__(self) -> dict:
        # Copies and pickles start with an empty cache: its tensors are views of the parameters taken
        # under no_grad, which autograd refuses to deep-copy once a parameter has been updated in place.
        state = dict(super().__getstate__())  # a copy: the live module keeps its cache
        for name in ("_cache_key", "_cache_value", "_cache_alive"):
            state.pop(name, None)
        return state

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .half() replace the storage: drop derived weights
        self.clear_cache()
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True):
        if mode:  # training changes the weights: free the derived copies now rather than at the next eval
            self.clear_cache()
        return super().train(mode)


def copy_out(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached copies, so a static twin never shares storage with the supernet."""
    return {k: v.detach().clone() for k, v in state.items()}
