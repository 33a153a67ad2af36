"""Hydra's compose API behind a function: YAML configs shipped in the package plus key=value overrides."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from supernet.errors import SupernetError
from supernet.space import SearchSpace

CONFIG_DIR = Path(str(files("supernet.configs")))


class ConfigError(SupernetError):
    """A config name, key or override value that cannot be composed."""


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose `configs/<name>.yaml` with `key=value` overrides; errors become one-line `ConfigError`s."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"config: {first_line} (overrides: {' '.join(overrides) or 'none'})") from err


def space_from_config(cfg: DictConfig) -> SearchSpace:
    return SearchSpace.from_dict(OmegaConf.to_container(cfg.space, resolve=True))


def list_configs(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
