"""Write an export folder all at once: into a hidden temp folder beside it, renamed into place at the end.

A failed or interrupted export (a writer error, a failed self-check, Ctrl-C) leaves no half-written
folder, and a re-export replaces the previous one only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from supernet.export.errors import ExportError
from supernet.run.files import DiskFullError, remove_stale_temporaries


def check_output(final: Path) -> None:
    """Refuse an output path that is a file, or a folder holding something other than an export."""
    if final.exists() and not final.is_dir():
        raise ExportError(f"output {final} is a file; choose a folder with --out DIR")
    if final.is_dir() and any(final.iterdir()) and not (final / "card.json").is_file():
        raise ExportError(f"output {final} exists and is not an export (no card.json); choose another --out "
                          "or remove it")


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield an empty temp folder; on success it becomes `final` (replacing an older export there).

    Staging folders of earlier exports to `final` that were killed (so could not clean up) go first."""
    final = Path(final).absolute()
    check_output(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final.parent, name=final.name)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=_prefix(final), suffix=".tmp"))
    except OSError as err:
        raise ExportError(f"cannot write the export to {final}: {err.strerror or err} "
                          f"({err.filename or final.parent}); choose another --out") from err
    try:
        yield tmp
        _make_shareable(tmp)
        _replace(tmp, final)
    except DiskFullError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        # Name the file as the user knows it, not inside the hidden staging folder.
        inside = err.path.is_relative_to(tmp)
        raise (err.renamed(final / err.path.relative_to(tmp)) if inside else err) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prefix(final: Path) -> str:
    return f".{final.name}.{os.getpid()}."


def _make_shareable(folder: Path) -> None:
    """mkdtemp / mkstemp make private (0700 / 0600) entries; an export is meant to be read by others."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o644)


def _replace(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.replace(tmp, final)
        return
    # A folder cannot be renamed over a non-empty one: move the old export aside first.
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=_prefix(final), suffix=".old"))
    os.replace(final, old / final.name)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old / final.name, final)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
