"""What every command shares: one-line errors with exit code 2, and a rich console."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from supernet.errors import SupernetError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn the library's `SupernetError`s into `error: <message>` and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SupernetError as err:
            raise fail(str(err)) from None
        except FileNotFoundError as err:
            raise fail(f"{err.strerror}: {err.filename}") from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
