"""Files every stage writes: atomically (temp file + rename), with their digests and the versions used."""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

_PACKAGES = ("supernet", "torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "safetensors")


def atomic_write_bytes(path: Path, write) -> None:
    """Call `write(file)` on a temp file in `path`'s folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; tables and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


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
