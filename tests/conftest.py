"""Fixtures every test directory may use: the shipped search spaces, and torch thread hygiene.

Tests run on one intra-op thread: their tensors are tiny, so a second thread only adds synchronisation,
and on a shared or busy machine (or under pytest-xdist, one process per core) spinning OpenMP threads
slow such tests down by an order of magnitude. A test that needs more threads sets them itself; the
count is put back after every test.
"""

from __future__ import annotations

import pytest
import torch

from supernet.config import CONFIG_DIR
from supernet.space import SearchSpace

TEST_THREADS = 1


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that changes torch's intra-op thread count does not leak it into the next one."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_space() -> SearchSpace:
    return SearchSpace.from_yaml(CONFIG_DIR / "space" / "small.yaml")


@pytest.fixture(scope="session")
def ofa_space() -> SearchSpace:
    return SearchSpace.from_yaml(CONFIG_DIR / "space" / "ofa_mbv3.yaml")


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size)`: a folder on a tmpfs of `size` bytes (a disk that fills); skipped where this
    process may not mount one."""
    import subprocess

    mounts = []

    def mount(size: int):
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)
