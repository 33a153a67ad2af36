"""The device fingerprint: what a latency table was measured on, and a short id to name cached tables by.

Two tables agree only if every field agrees: a block's latency depends on the device as much as on the
thread count, batch size, dtype and memory format it ran with.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import torch

from supernet.latency.settings import MeasureSettings, require_target

Fingerprint = dict[str, Any]


def cpu_name() -> str:
    """The CPU model as the kernel reports it (e.g. 'Intel(R) Xeon(R) Platinum 8480+')."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown cpu"


def current_fingerprint(settings: MeasureSettings) -> Fingerprint:
    """The fingerprint a table measured here, now, with `settings` would carry."""
    require_target(settings.target)
    gpu = settings.target == "gpu"
    return {
        "target": settings.target,
        "device": torch.cuda.get_device_name() if gpu else cpu_name(),
        "torch": torch.__version__,
        # CUDA and cuDNN versions only change GPU timings; a CPU table stays valid across CUDA builds.
        "cuda": torch.version.cuda if gpu else None,
        "cudnn": torch.backends.cudnn.version() if gpu else None,
        "cudnn_benchmark": settings.cudnn_benchmark if gpu else None,
        "threads": None if gpu else (settings.threads or torch.get_num_threads()),
        "batch_size": settings.batch_size,
        "dtype": settings.dtype,
        "memory_format": settings.memory_format,
    }


def fingerprint_id(fingerprint: Fingerprint) -> str:
    """A short stable id, e.g. 'cpu-1a2b3c4d5e', used to name cached tables."""
    digest = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:10]
    return f"{fingerprint.get('target', 'dev')}-{digest}"


def describe(fingerprint: Fingerprint) -> str:
    """One readable line: device, software and the measurement settings."""
    parts = [f"{fingerprint.get('target')} '{fingerprint.get('device')}'",
             f"torch {fingerprint.get('torch')}"]
    if fingerprint.get("cuda"):
        parts.append(f"CUDA {fingerprint['cuda']} cuDNN {fingerprint.get('cudnn')} "
                     f"cudnn.benchmark={fingerprint.get('cudnn_benchmark')}")
    if fingerprint.get("threads") is not None:
        parts.append(f"threads={fingerprint['threads']}")
    parts.append(f"batch={fingerprint.get('batch_size')} {fingerprint.get('dtype')} "
                 f"{fingerprint.get('memory_format')}")
    return ", ".join(parts)


def differences(built: Fingerprint, here: Fingerprint) -> list[str]:
    """The fields that differ, as 'field: built vs here'."""
    return [f"{k}: {built.get(k)!r} vs {here.get(k)!r}" for k in sorted(set(built) | set(here))
            if built.get(k) != here.get(k)]
