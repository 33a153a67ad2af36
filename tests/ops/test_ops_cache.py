"""The eval weight cache: used when no gradient is recorded, never stale, dropped with the storage."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from supernet.ops import DynamicBatchNorm2d, DynamicDepthwiseConv2d, DynamicPointConv2d, DynamicSqueezeExcite


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sliced_ops() -> list[tuple[nn.Module, Tensor]]:
    """One op of each kind, active below its full size over several blocks of its chunked tensors."""
    g = gen(0)
    point = DynamicPointConv2d(12, 10, bias=True, in_sizes=(4,), out_sizes=(3,))
    point.set_active(8, 6)
    depthwise = DynamicDepthwiseConv2d(12, (3, 5, 7), 1, channel_sizes=(4,))
    depthwise.set_active(8, 3)
    se = DynamicSqueezeExcite(12, 6, channel_sizes=(4,), hidden_sizes=(2,))
    se.set_active(8, 4)
    bn = DynamicBatchNorm2d(12, sizes=(4,))
    bn.set_active(8)
    with torch.no_grad():
        for op in (depthwise, se, bn):
            for p in op.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        bn.running_mean.normal_(generator=g)
    return [(op.eval(), torch.randn(2, 8, 6, 6, generator=g)) for op in (point, depthwise, se, bn)]


OP_NAMES = ["point", "depthwise", "se", "bn"]


@pytest.mark.parametrize("index", range(4), ids=OP_NAMES)
def test_cached_and_uncached_outputs_are_equal(index: int) -> None:
    op, x = sliced_ops()[index]
    uncached = op(x)  # grad mode with trainable weights: no cache
    assert op._cache_key is None
    with torch.no_grad():
        first = op(x)
        key, value = op._cache_key, op._cache_value
        second = op(x)
    assert key is not None and op._cache_value is value, "the second no-grad forward rebuilt the cache"
    assert torch.equal(first, second)
    torch.testing.assert_close(first, uncached, atol=0, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(op(x), uncached, atol=0, rtol=0)


@pytest.mark.parametrize("index", range(4), ids=OP_NAMES)
def test_optimizer_step_is_seen_by_the_next_cached_forward(index: int) -> None:
    op, x = sliced_ops()[index]
    with torch.no_grad():
        before = op(x)
    optimizer = torch.optim.SGD(op.parameters(), lr=0.5)
    op.train()
    (op(x) ** 2).mean().backward()
    optimizer.step()
    op.eval()
    with torch.no_grad():
        after = op(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, op.to_static().eval()(x), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("index", range(4), ids=OP_NAMES)
@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_is_seen_by_the_next_cached_forward(index: int, assign: bool) -> None:
    op, x = sliced_ops()[index]
    with torch.no_grad():
        before = op(x)
    state = {k: v * 2 + 0.1 if v.is_floating_point() else v.clone() for k, v in op.state_dict().items()}
    # With assign=True the parameters are replaced by new tensors whose version counters start afresh.
    op.load_state_dict(state, assign=assign)
    op.eval()
    with torch.no_grad():
        after = op(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, op.to_static().eval()(x), atol=1e-6, rtol=1e-5)


def test_data_assignment_is_seen_by_the_next_cached_forward() -> None:
    """`p.data = t` replaces the storage without bumping the version counter."""
    op, x = sliced_ops()[0]
    with torch.no_grad():
        before = op(x)
        for block in op.blocks("weight"):
            block.data = block.data * 3
        after = op(x)
        expected = F.conv2d(x, op.weight[:6, :8], op.bias[:6])  # the new (tripled) weight
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("index", range(4), ids=OP_NAMES)
def test_changing_dtype_clears_the_cache(index: int) -> None:
    op, x = sliced_ops()[index]
    with torch.no_grad():
        op(x)
    assert op._cache_key is not None
    op = op.to(torch.float64)
    assert op._cache_key is None and op._cache_value == ()
    with torch.no_grad():
        out = op(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, op.to_static().eval()(x.double()), atol=1e-12, rtol=1e-12)


def test_active_size_change_rebuilds_the_cache() -> None:
    op, x = sliced_ops()[0]
    with torch.no_grad():
        op(x)
        op.set_active(4, 6)
        out = op(x[:, :4])
    torch.testing.assert_close(out, op.to_static()(x[:, :4]), atol=1e-6, rtol=1e-5)


def test_frozen_op_after_inference_mode_still_backpropagates_to_its_input() -> None:
    """Weights cached under inference_mode are ordinary tensors: a later grad-mode forward may use them."""
    op, x = sliced_ops()[1]
    op.requires_grad_(False)
    with torch.inference_mode():
        reference = op(x)
    x = x.clone().requires_grad_()
    out = op(x)
    out.sum().backward()
    assert torch.equal(out.detach(), reference.clone())
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_training_never_uses_or_builds_the_cache() -> None:
    op, x = sliced_ops()[0]
    op.train()
    out = op(x)
    assert op._cache_key is None and out.grad_fn is not None
    out.sum().backward()
    grad = op.whole_grad("weight")
    assert grad is not None and grad[:6, :8].abs().sum() > 0


@pytest.mark.parametrize("index", range(4), ids=OP_NAMES)
def test_deepcopy_after_an_update_starts_with_an_empty_cache(index: int) -> None:
    """The cache holds no-grad views of the parameters; copying them after an in-place update would fail."""
    op, x = sliced_ops()[index]
    with torch.no_grad():
        op(x)
        for p in op.parameters():
            p.mul_(1.5)
    twin = copy.deepcopy(op)
    assert twin._cache_key is None and op._cache_key is not None
    with torch.no_grad():
        torch.testing.assert_close(twin(x), op(x), atol=0, rtol=0)


def test_ops_built_under_inference_mode_run_without_the_cache() -> None:
    """Inference tensors keep no version counter, so nothing could tell a stale cache from a fresh one."""
    with torch.inference_mode():
        op, x = sliced_ops()[1]
        out = op(x)
        assert op._cache_key is None
        torch.testing.assert_close(out, op.to_static()(x), atol=1e-6, rtol=1e-5)


def test_train_mode_drops_the_cache_and_eval_mode_keeps_it() -> None:
    op, x = sliced_ops()[0]
    with torch.no_grad():
        op(x)
    op.eval()
    assert op._cache_key is not None
    op.train()
    assert op._cache_key is None and op._cache_value == ()
