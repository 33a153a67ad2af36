"""IDX reading: round trips, and every kind of damage gives a DatasetError naming the file."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.data import DatasetError, read_idx, write_idx


def _sample_images() -> torch.Tensor:
    return torch.arange(5 * 4 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(5, 4, 3)


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_round_trip_gz_and_plain(tmp_path: Path, name: str) -> None:
    images = _sample_images()
    write_idx(tmp_path / name, images)
    loaded = read_idx(tmp_path / name, expected_ndim=3)
    assert loaded.dtype == torch.uint8
    assert torch.equal(loaded, images)


def test_gzip_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    images = _sample_images()
    write_idx(tmp_path / "data.gz", images)
    renamed = (tmp_path / "data.gz").rename(tmp_path / "data-without-suffix")
    assert torch.equal(read_idx(renamed), images)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=4), compress=st.booleans())
def test_round_trip_any_shape(shape: list[int], compress: bool) -> None:
    values = torch.arange(int(torch.tensor(shape).prod()), dtype=torch.int64)
    tensor = values.remainder(256).to(torch.uint8).reshape(shape)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / ("t.idx.gz" if compress else "t.idx")
        write_idx(path, tensor)
        loaded = read_idx(path)
    assert loaded.shape == tensor.shape
    assert torch.equal(loaded, tensor)


def _raw_idx(type_code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (_raw_idx(0x08, (2, 3), bytes(5)), "truncated IDX data"),
        (_raw_idx(0x08, (2, 3), bytes(7)), "trailing bytes"),
        (_raw_idx(0x08, (2, 3), b"")[:9], "truncated IDX header"),
        (b"\x01\x02" + _raw_idx(0x08, (2,), bytes(2))[2:], "bad IDX magic"),
        (_raw_idx(0x0D, (2,), bytes(8)), "float32"),
        (_raw_idx(0x08, (), b""), "0 dimensions"),
        (b"\x00\x00", "not an IDX file"),
    ],
)
def test_damaged_file_names_file_and_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=problem) as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_truncated_gzip_names_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, torch.randint(0, 256, (50, 8, 8), dtype=torch.uint8, generator=torch.Generator()))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated gzip") as caught:
        read_idx(path)
    assert "train-images-idx3-ubyte.gz" in str(caught.value)


def test_corrupt_gzip_payload_names_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    compressed = bytearray(gzip.compress(_raw_idx(0x08, (100,), bytes(range(100)))))
    compressed[12:20] = b"\xff" * 8  # clobber the deflate stream right after the gzip header
    path.write_bytes(bytes(compressed))
    with pytest.raises(DatasetError) as caught:
        read_idx(path)
    assert "labels.gz" in str(caught.value)


def test_unexpected_dimension_count(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, torch.zeros(4, 2, dtype=torch.uint8))
    with pytest.raises(DatasetError, match="2 dimensions, expected 1"):
        read_idx(path, expected_ndim=1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found") as caught:
        read_idx(tmp_path / "absent.gz")
    assert "absent.gz" in str(caught.value)


def test_dataset_error_is_a_value_error() -> None:
    assert issubclass(DatasetError, ValueError)
