"""Errors of the export stage: each is a `SupernetError`, so the command line prints one line, exit code 2."""

from __future__ import annotations

from supernet.errors import SupernetError


class ExportError(SupernetError):
    """An export that cannot be made or read: bad choice of child, missing file, unwritable folder."""


class SelectionError(ExportError):
    """No child matches the request: an index out of range, a latency budget nothing meets, no front."""


class VerificationError(ExportError):
    """A written file does not reproduce the supernet child's outputs within tolerance."""


def first_line(err: BaseException) -> str:
    """`Type: first line of the message`: the part of a library's error that fits on a user's line."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__
