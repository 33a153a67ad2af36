"""The `supernet` command: thin commands that compose a config and call one library function."""

from __future__ import annotations

import typer

from supernet_cli.config import show_config
from supernet_cli.export import evaluate, export
from supernet_cli.info import info
from supernet_cli.lut import lut_app
from supernet_cli.search import search
from supernet_cli.specialise import specialise
from supernet_cli.train import train

app = typer.Typer(
    name="supernet",
    help="Train one weight-sharing supernet, search children per device, export them as plain models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("train")(train)
app.command("info")(info)
app.command("config")(show_config)
app.add_typer(lut_app, name="lut")
app.command("export")(export)
app.command("eval")(evaluate)
app.command("search")(search)
app.command("specialise")(specialise)


@app.callback()
def root() -> None:
    """Train one weight-sharing supernet, search children per device, export them as plain models."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
