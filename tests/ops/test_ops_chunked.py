"""Chunked parameters: blocks tile the tensor, prefixes equal slices, and outside the op the tensor is
one whole (state dict, reads, writes, copies) whatever the cuts."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from supernet.ops import DynamicBatchNorm2d, DynamicPointConv2d, DynamicSqueezeExcite
from supernet.ops.chunked import ChunkGrid, normalised_cuts, split_into_blocks


def test_cuts_keep_the_sizes_below_full_once_and_end_at_full() -> None:
    assert normalised_cuts((8, 4, 8, 12, 0, 20), 12) == (4, 8, 12)
    assert normalised_cuts((), 12) == (12,)
    with pytest.raises(ValueError, match=r"cuts \(4, 3, 12\) of 'w' \(dim 0\) must increase to 12"):
        ChunkGrid("w", (12, 5), ((4, 3, 12),))


def test_blocks_tile_the_tensor_and_every_prefix_is_the_slice() -> None:
    grid = ChunkGrid("w", (10, 7, 3), ((2, 6, 10), (3, 7)))
    full = torch.randn(10, 7, 3, generator=torch.Generator().manual_seed(0))
    blocks = split_into_blocks(grid, full)
    assert list(blocks) == [f"w_{i}_{j}" for i in range(3) for j in range(2)]
    covered = torch.zeros(10, 7, 3, dtype=torch.int64)
    for name, region in grid.blocks():
        covered[region] += 1
        assert torch.equal(blocks[name], full[region]) and blocks[name].is_contiguous()
    assert bool((covered == 1).all()), "blocks overlap or leave a gap"
    for rows, cols in itertools.product(range(1, 11), range(1, 8)):
        assert torch.equal(grid.assemble(blocks, (rows, cols)), full[:rows, :cols]), (rows, cols)
    assert grid.reached((6, 3)) == ("w_0_0", "w_1_0") and grid.reached((7, 4)) == tuple(blocks)
    assert grid.exact_block((2, 3)) == "w_0_0" and grid.exact_block((2, 4)) is None


def test_an_uncut_tensor_is_one_parameter_under_its_own_name() -> None:
    op = DynamicPointConv2d(6, 4, bias=True)
    assert [name for name, _ in op.named_parameters()] == ["weight", "bias"]


def test_state_dict_holds_whole_tensors_whatever_the_cuts() -> None:
    torch.manual_seed(0)
    chunked = DynamicSqueezeExcite(12, 6, channel_sizes=(4, 8), hidden_sizes=(2,))
    torch.manual_seed(0)
    whole = DynamicSqueezeExcite(12, 6)
    state = chunked.state_dict()
    assert list(state) == ["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    assert state["fc1_weight"].shape == (6, 12, 1, 1) and state["fc2_weight"].shape == (12, 6, 1, 1)
    for key, value in whole.state_dict().items():
        assert torch.equal(state[key], value), key  # same initialisation, cut or not
    # Round trip into a differently cut op, through a file.
    other = DynamicSqueezeExcite(12, 6, channel_sizes=(6,), hidden_sizes=(3, 5))
    shifted = {k: v + 1 for k, v in state.items()}
    other.load_state_dict(shifted)
    for key, value in shifted.items():
        assert torch.equal(getattr(other, key), value), key


def test_loading_names_the_whole_tensor_when_it_is_missing_or_misshapen() -> None:
    op = DynamicBatchNorm2d(8, sizes=(4,))
    state = op.state_dict()
    del state["weight"]
    result = op.load_state_dict(state, strict=False)
    assert result.missing_keys == ["weight"] and result.unexpected_keys == []
    state = op.state_dict()
    state["bias"] = torch.zeros(9)
    with pytest.raises(RuntimeError, match=r"size mismatch for bias: copying a param with shape \(9,\)"):
        op.load_state_dict(state)


def test_reads_are_copies_that_refuse_writes_and_assign_writes_every_block() -> None:
    op = DynamicBatchNorm2d(8, sizes=(2, 5))
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        op.weight.add_(1.0)
    op.assign_("weight", torch.arange(8.0))
    assert torch.equal(op.weight, torch.arange(8.0))
    assert [p.tolist() for p in op.blocks("weight")] == [[0.0, 1.0], [2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]
    with pytest.raises(ValueError, match=r"weight has shape \(8,\), not \(7,\)"):
        op.assign_("weight", torch.zeros(7))


def test_copies_and_dtype_changes_keep_a_working_op() -> None:
    op = DynamicPointConv2d(12, 10, bias=True, in_sizes=(4,), out_sizes=(6,))
    op.set_active(8, 6)
    x = torch.randn(2, 8, 3, 3)
    expected = op(x)
    twin = copy.deepcopy(op)
    assert torch.equal(twin(x), expected)
    assert all(a is not b for a, b in zip(twin.parameters(), op.parameters(), strict=True))
    double = op.to(torch.float64)
    torch.testing.assert_close(double(x.double()), expected.double(), atol=1e-6, rtol=1e-6)
