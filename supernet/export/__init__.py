"""Export: one child of a trained supernet as standalone, self-checked files, and their evaluation."""

from supernet.export.card import read_card, render_readme
from supernet.export.errors import ExportError, SelectionError, VerificationError
from supernet.export.evaluate import EvalResult, evaluate_export
from supernet.export.fold_bn import fold_batchnorm, fuse_conv_bn
from supernet.export.loaders import load_format
from supernet.export.pipeline import ExportRequest, ExportResult, export_child
from supernet.export.select import Selection, load_front, select_arch
from supernet.export.verify import FormatCheck
from supernet.export.writers import DEFAULT_FORMATS, FORMATS, parse_formats

__all__ = [
    "DEFAULT_FORMATS", "FORMATS", "EvalResult", "ExportError", "ExportRequest", "ExportResult", "FormatCheck",
    "Selection", "SelectionError", "VerificationError", "evaluate_export", "export_child", "fold_batchnorm",
    "fuse_conv_bn", "load_format", "load_front", "parse_formats", "read_card", "render_readme", "select_arch",
]
