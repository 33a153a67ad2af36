"""The one exception type the data layer raises for problems with data on disk or in config."""

from __future__ import annotations

from supernet.errors import SupernetError


class DatasetError(SupernetError):
    """A dataset could not be found, read or configured.

    A SupernetError (hence a ValueError), so the command line reports it as one line with exit code 2;
    the message always says which file or setting is at fault and what to do about it.
    """


class ImageFileError(DatasetError):
    """An image file that cannot be read or decoded; the message starts with its path.

    Raised in a DataLoader worker, it is re-created in the main process from a text that holds the
    worker's traceback; the constructor keeps only the original message, so the command line still
    prints one line.
    """

    def __init__(self, message: str) -> None:
        if "Original Traceback" in message:
            last = message.strip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)
