"""Work spread over forked processes, one per CPU core: what is single-threaded (exporting ONNX graphs) or
gains little from more threads (counting a small child's hits) runs several at once.

Workers are forked, as torch's own data loaders are on Linux: they inherit the parent's loaded models
and data copy-on-write and start in milliseconds, and the functions they run need no pickling. They
ignore Ctrl-C, which the parent handles, and die with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

R = TypeVar("R")

_job: Callable[[int], object] | None = None  # what `forked_map`'s workers run, inherited through the fork


def fork_available() -> bool:
    """Linux forks a process that has run torch safely, unless it has initialised CUDA (a forked child
    cannot use CUDA then, and torch may reach for it); macOS does not, and Windows cannot fork."""
    return sys.platform.startswith("linux") and not torch.cuda.is_initialized()


def cpu_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it keeps what came back
    torch.set_num_threads(threads)


def fork_pool(workers: int, threads: int) -> multiprocessing.pool.Pool:
    """`workers` forked processes of `threads` intra-op threads each."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else a worker that flushes its copy of the buffer would print it again
    return multiprocessing.get_context("fork").Pool(workers, start_worker, (threads,))


def forked_map(job: Callable[[int], R], count: int) -> list[R]:
    """[job(0), ..., job(count - 1)], on one forked single-threaded worker per core where that can help,
    else here. `job` may be any callable (a closure, a lambda): the workers inherit it."""
    workers = min(count, cpu_cores()) if fork_available() else 1
    if workers < 2:
        return [job(i) for i in range(count)]
    global _job
    _job = job
    try:
        with fork_pool(workers, 1) as pool:
            return pool.map(_run_job, range(count), chunksize=1)
    finally:
        _job = None


def _run_job(index: int) -> object:
    assert _job is not None, "a forked_map worker started without its job"
    return _job(index)
