"""Work on forked workers: the same results as here, in order, from other processes, errors included."""

from __future__ import annotations

import os

import pytest

from supernet.parallel import cpu_cores, fork_available, forked_map


def test_forked_map_returns_what_a_plain_loop_returns_in_order():
    offset = 7  # a closure: the workers inherit it, nothing is pickled but the results
    assert forked_map(lambda i: i * i + offset, 9) == [i * i + offset for i in range(9)]
    assert forked_map(lambda i: i, 0) == []


@pytest.mark.skipif(not fork_available() or cpu_cores() < 2, reason="needs two cores and fork")
def test_forked_map_runs_in_other_processes():
    pids = set(forked_map(lambda _: os.getpid(), 6))
    assert os.getpid() not in pids and 1 <= len(pids) <= cpu_cores()


def test_an_error_in_a_job_reaches_the_caller():
    def job(i):
        if i == 3:
            raise ValueError("job 3 failed")
        return i

    with pytest.raises(ValueError, match="job 3 failed"):
        forked_map(job, 5)


def test_a_process_that_has_initialised_cuda_works_here_instead_of_forking(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert not fork_available()
    assert set(forked_map(lambda _: os.getpid(), 4)) == {os.getpid()}
