"""The one exception type the data layer raises for problems with data on disk or in config."""

from __future__ import annotations

from supernet.errors import SupernetError


class DatasetError(SupernetError):
    """A dataset could not be found, read or configured.

    A SupernetError (hence a ValueError), so the command line reports it as one line with exit code 2;
    the message always says which file or setting is at fault and what to do about it.
    """
