"""Counting children's hits in forked worker processes, several children at once.

On a CPU a child's small convolutions gain less from a second intra-op thread than a second child gains
from its own core: two single-threaded processes count 1.15 to 1.35 times as many children as one
process with two threads (docs/search.md). The workers live as long as their evaluator, so a search
forks them once; results come back in request order, so whoever records them records the same sequence
whichever worker finishes first.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from supernet.parallel import fork_pool
from supernet.search.accuracy_store import Request
from supernet.space import Arch


class Counter(Protocol):
    def correct(self, arch: Arch, start: int = 0, stop: int | None = None) -> int: ...


# The counters whose workers exist, by token: a forked worker finds its parent's counter here (a pool
# that replaces a dead worker forks again later, so the entry stays while the counter lives). Weak, so
# that a counter nobody holds is collected, and its workers stopped with it.
_counters: weakref.WeakValueDictionary[int, Counter] = weakref.WeakValueDictionary()
_tokens = itertools.count()


def _count(task: tuple[int, Request]) -> int:
    token, (arch, start, stop) = task
    return _counters[token].correct(arch, start, stop)


class WorkerPool:
    """`workers` forked processes of `threads` intra-op threads each, counting for `counter`."""

    def __init__(self, counter: Counter, workers: int, threads: int) -> None:
        self.token = next(_tokens)
        _counters[self.token] = counter
        self._pool = fork_pool(workers, threads)
        self._finalizer = weakref.finalize(self, _shut, self._pool, self.token)

    def count(self, requests: Sequence[Request]) -> Iterator[int]:
        """The hits of each request, in order, each as soon as it and those before it are counted."""
        return self._pool.imap(_count, [(self.token, request) for request in requests])

    def close(self) -> None:
        """Stop the workers now, dropping any work still queued."""
        self._finalizer()


def _shut(pool: Any, token: int) -> None:
    pool.terminate()
    _counters.pop(token, None)
