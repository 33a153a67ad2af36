"""Latency lookup tables: block latencies measured on the target device, calibrated to whole children."""

from supernet.latency.api import cached_table_path, get_table
from supernet.latency.build import build_table
from supernet.latency.calibrate import Calibration
from supernet.latency.children import CalibrationPlan
from supernet.latency.errors import (
    DeviceMismatchError,
    LatencyError,
    LatencySettingsError,
    LatencyTableError,
    MissingEntryError,
    TargetUnavailableError,
)
from supernet.latency.fingerprint import current_fingerprint, fingerprint_id
from supernet.latency.keys import reachable_layers
from supernet.latency.measure import Measurer, measure_child_latency
from supernet.latency.settings import MeasureSettings
from supernet.latency.stats import error_report, kendall_tau
from supernet.latency.table import LatencyTable
from supernet.latency.validate import validate_table

__all__ = [
    "Calibration", "CalibrationPlan", "DeviceMismatchError", "LatencyError", "LatencySettingsError",
    "LatencyTable", "LatencyTableError", "MeasureSettings", "Measurer", "MissingEntryError",
    "TargetUnavailableError", "build_table", "cached_table_path", "current_fingerprint", "error_report",
    "fingerprint_id", "get_table", "kendall_tau", "measure_child_latency", "reachable_layers",
    "validate_table",
]
