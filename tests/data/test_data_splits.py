"""hold_out as a property: disjoint, in range, sized as asked, stable under subset changes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from supernet.data import DatasetError, hold_out


@settings(max_examples=60, deadline=None)
@given(
    num_train=st.integers(min_value=2, max_value=400),
    val_fraction=st.floats(min_value=0.0, max_value=0.9),
    seed=st.integers(min_value=0, max_value=2**32),
    subset=st.one_of(st.none(), st.integers(min_value=1, max_value=500)),
)
def test_hold_out_properties(num_train: int, val_fraction: float, seed: int, subset: int | None) -> None:
    assume(round(val_fraction * num_train) < num_train)  # otherwise nothing is left to train on
    split = hold_out(num_train, val_fraction, seed, subset=subset)
    train, val = split.train.tolist(), split.val.tolist()
    assert not set(train) & set(val)
    assert all(0 <= index < num_train for index in train + val)
    assert len(val) == round(val_fraction * num_train)
    assert len(train) == min(subset or num_train, num_train - len(val))
    assert train == sorted(train) and val == sorted(val)
    full = hold_out(num_train, val_fraction, seed)
    assert torch.equal(split.val, full.val)
    assert set(train) <= set(full.train.tolist())


def test_fraction_leaving_no_training_data_is_an_error() -> None:
    with pytest.raises(DatasetError, match="at least one for training"):
        hold_out(2, 0.75, seed=0)
