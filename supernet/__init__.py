"""supernet: train one weight-sharing supernet, then search and export a child per device.

The public Python API; each name is imported on first use, so `import supernet` stays light::

    import supernet
    result = supernet.train_supernet("runs/demo", ["epochs=1"])
    table = supernet.build_table("cpu", out="luts/cpu.json")
    [front] = supernet.search_fronts("runs/demo", luts=["luts/cpu.json"])
    exported = supernet.export_model("runs/demo", pick="best", search_device=front.device)
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "train_supernet": "supernet.api", "build_table": "supernet.api", "search_fronts": "supernet.api",
    "export_model": "supernet.api", "compose_config": "supernet.config",
    "Arch": "supernet.space", "SearchSpace": "supernet.space", "Supernet": "supernet.models",
    "LatencyTable": "supernet.latency", "SupernetError": "supernet.errors",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
