"""Files every stage writes: atomically (temp file + rename), with their digests and the versions used.

A temp file is named `.<name>.<pid>.<random>.tmp` beside its target, so a later process can tell the
leftovers of a killed writer (`remove_stale_temporaries`) from the files of one still running.
"""

from __future__ import annotations

import errno
import hashlib
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

from supernet.errors import SupernetError

_PACKAGES = ("supernet", "torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "safetensors")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
PROCESS_START = time.time()  # temporaries modified before this cannot be this process's own


class DiskFullError(SupernetError):
    """A write that does not fit on its disk; the partial file has been removed."""

    def __init__(self, path: Path, needed: int | None, free: int, unwritten: int | None = None) -> None:
        self.path, self.needed, self.free, self.unwritten = Path(path), needed, free, unwritten
        if unwritten:  # 0: every byte was handed over, and the disk filled when they were flushed
            what = f"{human_bytes(unwritten)} could not be written"
        elif needed is not None:
            what = f"it needs {human_bytes(needed)}"
        else:
            what = "the disk filled during the write"
        super().__init__(f"disk full: cannot write {self.path} ({what}, {human_bytes(free)} free); free some "
                         "space or write to another disk (the partial file was removed)")

    def renamed(self, path: Path) -> DiskFullError:
        """The same failure reported at `path` (e.g. the final name of a file written in staging)."""
        return DiskFullError(path, self.needed, self.free, self.unwritten)


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _DISK_FULL


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object], size: int | None = None) -> None:
    """Call `write(file)` on a temp file in `path`'s folder, then rename it over `path`.

    With `size` (the bytes `write` will write) a write that cannot fit is refused before the disk is
    touched; a full disk found during the write raises `DiskFullError` too, with the temp file removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if size is not None and free_bytes(path.parent) < size:
        raise DiskFullError(path, size, free_bytes(path.parent))
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; tables and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException as err:
        written = _remove(tmp)
        if is_disk_full(err):
            unwritten = None if size is None else max(0, size - written)
            raise DiskFullError(path, size, free_bytes(path.parent), unwritten) from None
        raise


def atomic_write_data(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, lambda f: f.write(data), size=len(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_data(path, text.encode())


def _remove(tmp: str | None) -> int:
    """Delete a temp file; return how many bytes it held."""
    if tmp is None:
        return 0
    try:
        size = os.path.getsize(tmp)
        os.unlink(tmp)
    except FileNotFoundError:
        return 0
    return size


def remove_stale_temporaries(folder: Path, every: bool = False, name: str | None = None) -> list[Path]:
    """Delete the temp files and folders (`.<name>.<pid>.<random>.tmp|.old`) of killed writers in
    `folder` (only those of target `name` if given); return them.

    One counts as stale when it was last modified before this process started and the process whose
    id is in its name is gone; `every=True` (for a folder only this process writes) drops every
    `.*.tmp` but this process's own, older names without a process id included."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    start = f".{name}." if name else "."
    for entry in folder.iterdir():
        if not (entry.name.startswith(start) and entry.name.endswith((".tmp", ".old"))):
            continue
        pid = _writer_pid(entry.name)
        if pid == os.getpid():
            continue
        if not every and (pid is None or _running(pid) or _modified(entry) >= PROCESS_START):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _writer_pid(name: str) -> int | None:
    parts = name.split(".")  # "", <name parts>, pid, random, "tmp"
    return int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None


def _modified(entry: Path) -> float:
    try:
        return entry.lstat().st_mtime
    except FileNotFoundError:
        return PROCESS_START


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """Python, platform, CUDA/cuDNN and the versions of the packages a run or an export depends on."""
    import torch

    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform(),
                                  "cuda": torch.version.cuda or "none",
                                  "cudnn": str(torch.backends.cudnn.version())}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
