"""`supernet config NAME`: a command's config resolved, every key with its value, as YAML."""

from __future__ import annotations

import typer

from supernet_cli.common import console, user_errors


@user_errors
def show_config(
    name: str = typer.Argument(..., help="the command's config: train, lut or search"),
    overrides: list[str] = typer.Argument(None, help="key=value overrides to apply first"),
) -> None:
    """Print a command's config with every default and override resolved (the keys `key=value` takes)."""
    from omegaconf import OmegaConf

    from supernet.config import compose_config

    console.print(OmegaConf.to_yaml(compose_config(name, overrides or [])), end="", highlight=False,
                  markup=False)
