"""Exclusive locks between processes on one path: `flock` on a lock file holding the owner's pid and host.

The kernel drops a `flock` when its holder exits in any way (crash and `kill -9` included), so a lock
file left behind is never stale: the next process takes it at once, whatever pid the file still names.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from supernet.errors import SupernetError


class LockedError(SupernetError):
    """Another live process holds the lock."""


def _owner(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
        return f"pid {data['pid']} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock `path` for the body, or refuse at once naming the holder and `what` it guards."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{what} is in use by {_owner(path)} (lock {path}); wait for it to finish "
                              "or stop that process") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        yield
    finally:
        _release(fd)


@contextmanager
def shared_append(path: str | Path) -> Iterator[int]:
    """An appending (and readable) descriptor of `path`, under an exclusive `flock` (waited for) meanwhile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        _release(fd)


def _release(fd: int) -> None:
    """Unlock, then close. Closing alone would not do: a process forked meanwhile (a worker) shares the
    descriptor, and would hold the lock for as long as it lives. Unlocking a lock not held is a no-op."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
