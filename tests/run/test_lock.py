"""`supernet.run.lock.exclusive`: one holder at a time, the refusal names it, a killed holder frees it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from pathlib import Path

import pytest

from supernet.run.lock import LockedError, exclusive


def _hold(path: str, ready) -> None:
    with exclusive(path, "the thing"):
        ready.set()
        signal.pause()


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_holder_frees_the_lock(tmp_path: Path):
    path = tmp_path / "x.lock"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(path), ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockedError) as err, exclusive(path, "the thing"):
            pass
        assert str(err.value) == (f"the thing is in use by pid {holder.pid} on {socket.gethostname()} "
                                  f"(lock {path}); wait for it to finish or stop that process")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    with exclusive(path, "the thing"):  # the kernel dropped the dead holder's lock; its file is still there
        assert f'"pid": {os.getpid()}' in path.read_text()


def test_the_lock_is_released_after_the_body_even_when_it_raises(tmp_path: Path):
    path = tmp_path / "y.lock"
    with pytest.raises(ValueError), exclusive(path, "y"):
        raise ValueError("boom")
    with exclusive(path, "y"):
        pass
