"""The one exception family the command line turns into a one-line message and exit code 2."""


class SupernetError(ValueError):
    """Bad input from the user: a config value, an architecture, a file. The message names the fix."""


def first_line(err: BaseException) -> str:
    """`Type: first line of the message`: the part of a library's error that fits on a user's line."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__
