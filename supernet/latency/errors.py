"""Errors of the latency tables; each is a `SupernetError`, so the command line prints one line, exit 2."""

from supernet.errors import SupernetError


class LatencyError(SupernetError):
    """Any user-facing problem with latency measurement or a latency table."""


class LatencySettingsError(LatencyError):
    """A measurement option (target, dtype, threads, repeats ...) that is not valid."""


class LatencyTableError(LatencyError):
    """A latency table file that is missing, corrupt, truncated or of another format."""


class MissingEntryError(LatencyError):
    """An architecture needs a layer the table has no measurement for."""


class DeviceMismatchError(LatencyError):
    """A table measured on another device (or with other settings) used for measurement-dependent work."""


class TargetUnavailableError(LatencyError):
    """The requested target device is not present on this machine."""
