"""Multi-objective search of a trained supernet's children: accuracy against latency, one front per device."""

from supernet.search.accuracy_store import AccuracyStore, Evaluation
from supernet.search.devices import Device, read_devices_file, resolve_devices
from supernet.search.engine import default_out_dir, run_search
from supernet.search.errors import InfeasibleConstraintError, SearchConfigError, SearchError, SearchStateError
from supernet.search.evaluator import AccuracyEvaluator
from supernet.search.front import dominates, hypervolume, nondominated, pareto_front
from supernet.search.many import search_devices
from supernet.search.objectives import ChildMeasures, Constraint, Measures, peak_memory_bytes
from supernet.search.report import front_table
from supernet.search.result import FrontEntry, GenerationStats, SearchResult
from supernet.search.settings import SearchSettings
from supernet.search.store import Candidate

__all__ = [
    "AccuracyEvaluator", "AccuracyStore", "Candidate", "ChildMeasures", "Constraint", "Device", "Evaluation",
    "FrontEntry", "GenerationStats", "InfeasibleConstraintError", "Measures", "SearchConfigError",
    "SearchError", "SearchResult", "SearchSettings", "SearchStateError", "default_out_dir", "dominates",
    "front_table", "hypervolume", "nondominated", "pareto_front", "peak_memory_bytes", "read_devices_file",
    "resolve_devices", "run_search", "search_devices",
]
