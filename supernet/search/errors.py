"""Errors of the search; each is a `SupernetError`, so the command line prints one line and exits 2."""

from supernet.errors import SupernetError


class SearchError(SupernetError):
    """Any user-facing problem with a search."""


class SearchConfigError(SearchError):
    """A search setting (population, objectives, constraints, ...) that is not valid."""


class InfeasibleConstraintError(SearchError):
    """A hard limit that no child of the space can meet (found before anything is evaluated)."""


class SearchStateError(SearchError):
    """Files of an earlier search that cannot be resumed (other settings, other checkpoint, damaged)."""
