"""Ctrl-C and SIGTERM ask the loop to stop at the next step boundary, so it can checkpoint and exit."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Installed as a context manager; `requested` names the signal once one arrived.

    A second Ctrl-C falls through to Python's default handler (KeyboardInterrupt) for people who
    really want out now.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum).name
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
