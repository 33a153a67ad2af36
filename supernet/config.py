"""Typed configs: one dataclass schema per command holds every default once.

YAML files (`configs/`) and `key=value` overrides only change values. Hydra composes them on top of the
schema, which refuses an unknown key or a value of the wrong type; `check` then refuses a value out of
its range. Every error is one line that names the key.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from supernet.errors import SupernetError

CONFIG_DIR = Path(str(files("supernet.configs")))

# config name (or "group/option") -> "module:Class" of its schema; a group option's YAML extends it as
# `defaults: [<option>_schema]` and names it in its `name` key.
SCHEMAS = {
    "train": "supernet.train.config:TrainConfig",
    "lut": "supernet.latency.settings:LutConfig",
    "latency": "supernet.latency.settings:LatencyConfig",  # search.yaml's `latency:`, as `lut` measures
    "strategy/sandwich": "supernet.train.config:SandwichConfig",
    "strategy/progressive_shrinking": "supernet.train.config:ProgressiveShrinkingConfig",
    "search": "supernet.search.settings:SearchSettings",
}


class ConfigError(SupernetError):
    """A config name, key or value that cannot be composed or is out of range."""


def setting(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, choices: Sequence[Any] | None = None) -> Any:
    """A schema field with its default and the range `check` enforces (None values are not checked)."""
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "choices": choices}.items() if v is not None}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=bounds)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=type(default), metadata=bounds)
    return dataclasses.field(default=default, metadata=bounds)


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose `configs/<name>.yaml` with `key=value` overrides over its schema, then check ranges."""
    _register_schemas(name)
    schema = schema_of(name)
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"config {name}: {_first_line(err)} (overrides: {' '.join(overrides) or 'none'}; "
                          f"`supernet config {name}` lists every key)") from err
    if schema is not None:
        check(cfg, schema)
    check_groups(cfg)
    return cfg


def conform(node: Mapping[str, Any] | DictConfig, schema: type, where: str = "") -> DictConfig:
    """`node` merged over `schema`'s defaults and checked: for configs read back from a file."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{where or 'config'}: {_first_line(err)}") from err
    check(cfg, schema, where)
    return cfg


def check(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """Refuse, naming the key, the first value outside the range its schema field declares."""
    for field in dataclasses.fields(schema):
        key = f"{prefix}.{field.name}" if prefix else field.name
        value = cfg.get(field.name)
        sub = _dataclass_type(field.type, schema)
        if sub is not None and value is not None:
            check(value, sub, key)
            continue
        if value is None or not field.metadata:
            continue
        meta = field.metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}={value!r}: choose one of {list(meta['choices'])}")
        if "ge" in meta and value < meta["ge"]:
            raise ConfigError(f"{key}={value!r}: must be at least {meta['ge']}")
        if "gt" in meta and value <= meta["gt"]:
            raise ConfigError(f"{key}={value!r}: must be greater than {meta['gt']}")
        if "le" in meta and value > meta["le"]:
            raise ConfigError(f"{key}={value!r}: must be at most {meta['le']}")


def check_groups(cfg: DictConfig) -> None:
    """`check` each group option (e.g. `strategy`) against the schema its `name` selects."""
    for key in SCHEMAS:
        group, _, option = key.partition("/")
        node = cfg.get(group) if option else None
        if isinstance(node, DictConfig) and node.get("name") == option:
            check(node, schema_of(key), group)


def schema_of(name: str) -> type | None:
    """The schema class of config `name`, or None for a config without one."""
    path = SCHEMAS.get(name)
    if path is None:
        return None
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


def default_of(name: str, key: str) -> Any:
    """The schema default of `key` (dotted) in config `name`, for code that has no composed config."""
    return OmegaConf.select(OmegaConf.structured(schema_of(name)), key)


def space_from_config(cfg: DictConfig):
    from supernet.space import SearchSpace

    return SearchSpace.from_dict(OmegaConf.to_container(cfg.space, resolve=True))


def _register_schemas(name: str) -> None:
    """The schema of `name` and every group option's: another command's schema may import what this
    one does not need (the search's imports the latency package, and torch with it)."""
    store = ConfigStore.instance()
    for key in SCHEMAS:
        group, _, option = key.partition("/")
        if not option and key != name:
            continue
        if option:
            store.store(group=group, name=f"{option}_schema", node=schema_of(key))
        else:
            store.store(name=f"{key}_schema", node=schema_of(key))


def _dataclass_type(annotation: Any, owner: type) -> type | None:
    """The dataclass a field's (string) annotation names, if it names one."""
    if isinstance(annotation, str):
        annotation = importlib.import_module(owner.__module__).__dict__.get(annotation)
    return annotation if dataclasses.is_dataclass(annotation) else None


def _first_line(err: BaseException) -> str:
    """The most specific line of an error chain, with the key it names."""
    while err.__cause__ is not None and isinstance(err.__cause__, (HydraException, OmegaConfBaseException)):
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), "")
    return f"{key}: {lines[0]}" if key and key not in lines[0] else lines[0]
