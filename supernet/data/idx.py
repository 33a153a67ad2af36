"""Reader and writer for the IDX format used by (Fashion-)MNIST.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the raw data in C order. Files may be gzip-compressed; we sniff the gzip magic
rather than trusting the extension, because mirrors are inconsistent about ``.gz`` suffixes.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from math import prod
from pathlib import Path

import torch

from supernet.data.errors import DatasetError

_GZIP_MAGIC = b"\x1f\x8b"
_UINT8_TYPE_CODE = 0x08
_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
# A sanity bound: real IDX files have 1-4 dims; a huge count means we are reading garbage.
_MAX_DIMS = 8


def read_idx(path: str | os.PathLike[str], expected_ndim: int | None = None) -> torch.Tensor:
    """Read an IDX file (plain or gzip) into a uint8 tensor shaped as its header says.

    Raises DatasetError naming the file for a missing file, a broken gzip stream, a bad magic
    number, a non-uint8 element type, a dimension count other than ``expected_ndim``, or a
    payload whose size does not match the header (truncated or with trailing bytes).
    """
    path = Path(path)
    raw = _read_decompressed(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: not an IDX file, only {len(raw)} bytes (header needs at least 4)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _TYPE_NAMES:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000TTNN with a known type code TT)"
        )
    if type_code != _UINT8_TYPE_CODE:
        raise DatasetError(f"{path}: IDX element type is {_TYPE_NAMES[type_code]}, only uint8 is supported")
    if not 1 <= ndim <= _MAX_DIMS:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions (expected 1..{_MAX_DIMS})")
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}")

    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{path}: truncated IDX header ({len(raw)} of {header_size} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = prod(dims)
    actual_size = len(raw) - header_size
    if actual_size < expected_size:
        raise DatasetError(
            f"{path}: truncated IDX data, header says shape {tuple(dims)} = {expected_size} bytes "
            f"but only {actual_size} are present"
        )
    if actual_size > expected_size:
        raise DatasetError(
            f"{path}: corrupt IDX file, {actual_size - expected_size} unexpected trailing bytes "
            f"after the {expected_size} bytes of shape {tuple(dims)}"
        )
    if expected_size == 0:
        return torch.empty(dims, dtype=torch.uint8)
    # frombuffer shares the bytearray instead of copying tens of MB a second time.
    flat = torch.frombuffer(raw, dtype=torch.uint8, offset=header_size, count=expected_size)
    return flat.view(dims)


def write_idx(path: str | os.PathLike[str], tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as IDX, gzip-compressed when ``path`` ends in ``.gz``."""
    if tensor.dtype != torch.uint8:
        raise TypeError(f"write_idx only writes uint8 tensors, got {tensor.dtype}")
    if not 1 <= tensor.dim() <= _MAX_DIMS:
        raise ValueError(f"write_idx needs 1..{_MAX_DIMS} dimensions, got {tensor.dim()}")
    header = bytes([0, 0, _UINT8_TYPE_CODE, tensor.dim()]) + struct.pack(f">{tensor.dim()}I", *tensor.shape)
    payload = tensor.detach().cpu().contiguous().numpy().tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + payload)


def _read_decompressed(path: Path) -> bytearray:
    try:
        raw = bytearray(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"{path}: IDX file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return bytearray(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error) as exc:
        # EOFError is what gzip raises for a stream cut short, e.g. an interrupted download.
        raise DatasetError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
