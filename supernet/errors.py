"""The one exception family the command line turns into a one-line message and exit code 2."""


class SupernetError(ValueError):
    """Bad input from the user: a config value, an architecture, a file. The message names the fix."""
