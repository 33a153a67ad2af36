"""`supernet info`: a search space's choices, size, and the cost of its largest and smallest child."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from supernet_cli.common import console, user_errors


@user_errors
def info(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides, e.g. space=ofa_mbv3"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Show a search space: its elastic choices, number of children, params and FLOPs of max/min."""
    from supernet.config import compose_config, space_from_config

    space = space_from_config(compose_config("train", overrides or []))
    summary = space.describe()
    extremes = {name: {"arch": str(arch), "params": space.params(arch), "flops": space.flops(arch)}
                for name, arch in (("max", space.max()), ("min", space.min()))}
    if as_json:
        console.print_json(json.dumps({**summary, **extremes}))
        return
    stages = Table(title=f"search space '{space.name}': {space.size():.3e} children, "
                         f"resolution {{{', '.join(map(str, summary['resolutions']))}}}")
    for column in ("stage", "channels", "stride", "SE", "act", "depth", "kernel", "expand", "width"):
        stages.add_column(column)
    for i, s in enumerate(summary["stages"]):
        stages.add_row(str(i), str(s["channels"]), str(s["stride"]), "yes" if s["se"] else "no", s["act"],
                       *(", ".join(f"{v:g}" for v in s[k]) for k in ("depth", "kernel", "expand", "width")))
    console.print(stages)
    children = Table(title="extreme children")
    for column in ("child", "params (M)", "FLOPs (M MACs)", "arch"):
        children.add_column(column)
    for name, row in extremes.items():
        children.add_row(name, f"{row['params'] / 1e6:.3f}", f"{row['flops'] / 1e6:.1f}", row["arch"])
    console.print(children)
