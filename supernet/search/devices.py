"""The devices a run is specialised for: a name, the latency table that predicts for it, and budgets.

Given on the command line as `--target` (the table cached or built here) or `--lut FILE` (repeatable),
or in a devices file (`configs/devices.yaml` shows one). A device without a name is named by its table:
`<target>` or `<target>-<runtime>` where the table records a runtime, and by the table's fingerprint id
where two tables would get one name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from supernet.config import ConfigError, conform, setting
from supernet.latency import LatencyConfig, LatencyTable
from supernet.search.errors import SearchConfigError
from supernet.search.latency import load_table
from supernet.search.settings import TARGETS
from supernet.space import SearchSpace

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a folder name under RUN_DIR/search/


@dataclass
class DeviceEntry:
    name: str | None = None  # null: named by its table
    lut: str | None = None  # the table file; null: the table cached (or built) for `target` here
    target: str | None = setting(None, choices=TARGETS)  # needed only without `lut`
    budgets_ms: list[float] = setting([])  # latency budgets `supernet specialise` exports a child for


@dataclass
class DevicesFile:
    devices: list[DeviceEntry] = setting([])


@dataclass
class Device:
    """A device ready to search for: its name, its table, and where its outputs go under the run."""

    name: str
    table: Any  # a LatencyTable, or anything with `predict(arch) -> ms`
    target: str
    budgets_ms: list[float] = field(default_factory=list)

    @property
    def runtime(self) -> str | None:
        return getattr(self.table, "fingerprint", {}).get("runtime")


def read_devices_file(path: str | Path) -> list[DeviceEntry]:
    """The entries of a devices file, checked against the schema (one line naming a bad key)."""
    path = Path(path)
    if not path.is_file():
        raise SearchConfigError(f"no devices file at {path}; see configs/devices.yaml for the format")
    try:
        cfg = conform(OmegaConf.load(path), DevicesFile, str(path))
    except ConfigError as err:
        raise SearchConfigError(str(err)) from err
    except Exception as err:  # YAML syntax errors come in many types
        raise SearchConfigError(f"{path} is not a devices file ({str(err).splitlines()[0]})") from err
    entries = [DeviceEntry(**OmegaConf.to_container(e)) for e in cfg.devices]
    if not entries:
        raise SearchConfigError(f"{path} lists no devices under 'devices:'")
    base = path.parent
    for entry in entries:
        if entry.lut is not None and not Path(entry.lut).is_absolute():
            entry.lut = str(base / entry.lut) if (base / entry.lut).is_file() else entry.lut
        for budget in entry.budgets_ms:
            if budget <= 0:
                raise SearchConfigError(f"{path}: device {entry.name or entry.lut}: budget {budget:g} ms "
                                        "must be positive")
    return entries


def entries_from_options(target: str | None, luts: Sequence[str | Path]) -> list[DeviceEntry]:
    if luts:
        return [DeviceEntry(lut=str(lut), target=target) for lut in luts]
    if target is None:
        raise SearchConfigError("say which device to search for: --target cpu|gpu, --lut FILE (repeatable) "
                                "or --devices FILE")
    return [DeviceEntry(target=target)]


def resolve_devices(space: SearchSpace, entries: Sequence[DeviceEntry],
                    latency: LatencyConfig) -> list[Device]:
    """Load each entry's table and name it; refuses a table of another target, or two devices one name."""
    devices = []
    for entry in entries:
        if entry.lut is not None:
            table = LatencyTable.load(entry.lut)
            table.require_covers(space)
        elif entry.target is not None:
            table = load_table(space, entry.target, None, latency)
        else:
            raise SearchConfigError(f"device {entry.name or '(unnamed)'} needs a lut: file or a target")
        table_target = table.fingerprint.get("target")
        if entry.target is not None and table_target not in (None, entry.target):
            raise SearchConfigError(f"the latency table {entry.lut} was measured on a {table_target} target, "
                                    f"not --target {entry.target}: pass a {entry.target} table")
        devices.append(Device(entry.name or "", table, table_target or entry.target or "cpu",
                              list(entry.budgets_ms)))
    _name(devices)
    return devices


def _name(devices: list[Device]) -> None:
    by_table = [d for d in devices if not d.name]
    for device in by_table:
        device.name = device.target + (f"-{device.runtime}" if device.runtime else "")
    names = [d.name for d in devices]
    for device in by_table:
        if names.count(device.name) > 1:
            device.name = device.table.fingerprint_id
    names = [d.name for d in devices]
    for device in devices:
        if not NAME.match(device.name):
            raise SearchConfigError(f"device name {device.name!r} must be letters, digits, '.', '_' or '-'")
        if names.count(device.name) > 1:
            raise SearchConfigError(f"two devices are named {device.name!r}; give each a name in the "
                                    "devices file")
