"""Every dynamic op equals its static torch twin for every active size: forward, and gradients of the
slice it ran (the rest of each gradient is zero, and blocks of a chunked tensor beyond the slice get
none). The twins are built here from the full parameters by plain indexing, independently of the ops'
own slicing code; `to_static()` must then agree with them. Each op runs whole (one block per tensor) and
chunked, with active sizes on block boundaries and between them."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

from supernet.ops import (
    DynamicBatchNorm2d,
    DynamicDepthwiseConv2d,
    DynamicOp,
    DynamicPointConv2d,
    DynamicSqueezeExcite,
)

ATOL = 1e-5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomize(module: nn.Module, seed: int) -> None:
    """Non-trivial values everywhere (biases, BN affine and stats, transform matrices)."""
    g = gen(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "transforms" in name else 1.0)
                    + (torch.eye(p.shape[0]) if "transforms" in name else 0.0))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def assert_no_shared_storage(static: nn.Module, dynamic: nn.Module) -> None:
    ours = {t.untyped_storage().data_ptr() for t in itertools.chain(dynamic.parameters(), dynamic.buffers())}
    assert not ours & {t.untyped_storage().data_ptr() for t in static.state_dict().values()}


def run_both(dynamic: nn.Module, static: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Outputs and input gradients of both, after a backward of the same random cotangent."""
    xd, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    yd, ys = dynamic(xd), static(xs)
    cotangent = torch.randn(yd.shape, generator=gen(99))
    (yd * cotangent).sum().backward()
    (ys * cotangent).sum().backward()
    return yd, ys, xd.grad, xs.grad


def assert_grad_is_slice(op: DynamicOp, name: str, index: tuple, expected: Tensor) -> None:
    full = op.whole_grad(name)
    torch.testing.assert_close(full[index], expected, atol=ATOL, rtol=1e-5)
    rest = full.clone()
    rest[index] = 0
    assert not rest.any(), "gradient leaked outside the active slice"
    for block, region in op.chunk_grids()[name].blocks():
        stops = [s.stop if s.stop is not None else r.stop for r, s in zip(region, index, strict=False)]
        if any(r.start >= stop for r, stop in zip(region, stops, strict=False)):
            assert op._parameters[block].grad is None, f"{block} lies beyond the slice yet got a gradient"


CHUNKED = pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])


# ----- 1x1 convolution


@CHUNKED
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("cin", "cout"), list(itertools.product((4, 8, 12), (2, 6, 10))))
def test_point_conv(cin: int, cout: int, bias: bool, chunked: bool) -> None:
    # Chunked: cin 4 and cout 2, 6 end blocks, cin 8 lies inside one.
    sizes = {"in_sizes": (4, 7), "out_sizes": (2, 6)} if chunked else {}
    op = DynamicPointConv2d(12, 10, bias=bias, **sizes)
    randomize(op, cin * 100 + cout)
    op.set_active(cin, cout)
    static = nn.Conv2d(cin, cout, 1, bias=bias)
    with torch.no_grad():
        static.weight.copy_(op.weight[:cout, :cin])
        if bias:
            static.bias.copy_(op.bias[:cout])
    x = torch.randn(3, cin, 5, 6, generator=gen(1))
    yd, ys, gd, gs = run_both(op, static, x)
    torch.testing.assert_close(yd, ys, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(gd, gs, atol=ATOL, rtol=1e-5)
    assert_grad_is_slice(op, "weight", (slice(cout), slice(cin)), static.weight.grad)
    if bias:
        assert_grad_is_slice(op, "bias", (slice(cout),), static.bias.grad)
    twin = op.to_static()
    assert type(twin) is nn.Conv2d and not isinstance(twin, DynamicOp)
    assert twin.state_dict().keys() == static.state_dict().keys()
    for k, v in static.state_dict().items():
        assert torch.equal(twin.state_dict()[k], v)
    assert_no_shared_storage(twin, op)


def test_point_conv_refuses_sizes_beyond_its_maximum() -> None:
    op = DynamicPointConv2d(8, 4)
    for cin, cout in ((9, 4), (8, 5), (0, 4)):
        with pytest.raises(ValueError, match=f"cannot run {cin}->{cout}"):
            op.set_active(cin, cout)


# ----- depthwise convolution with elastic kernel


def transformed(weight: Tensor, matrix: Tensor, small: int) -> Tensor:
    """new[c, k] = sum_ij matrix[k, i*small + j] * crop[c, i, j]: the crop's flat vector times matrixᵀ."""
    flat = weight.reshape(weight.shape[0], small * small)
    return torch.einsum("cj,kj->ck", flat, matrix).reshape(weight.shape[0], 1, small, small)


def elastic_kernel(weight: Tensor, transforms: dict[str, Tensor], channels: int, kernel: int) -> Tensor:
    w = weight[:channels]
    size = w.shape[-1]
    while size > kernel:
        size -= 2  # the kernels are 3, 5, 7: each step trims one pixel per side
        w = w[:, :, 1:-1, 1:-1]
        if transforms:
            w = transformed(w, transforms[f"to{size}"], size)
    return w


@CHUNKED
@pytest.mark.parametrize("transform", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("channels", "kernel"), list(itertools.product((4, 8), (3, 5, 7))))
def test_depthwise_conv(channels: int, kernel: int, stride: int, transform: bool, chunked: bool) -> None:
    op = DynamicDepthwiseConv2d(8, (3, 5, 7), stride, transform, channel_sizes=(4, 6) if chunked else ())
    randomize(op, channels * 10 + kernel)
    op.set_active(channels, kernel)
    # The reference kernel is differentiable in leaf copies of the op's parameters.
    weight = op.weight.detach().clone().requires_grad_()
    matrices = {k: v.detach().clone().requires_grad_() for k, v in op.transforms.items()}
    static = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)
    x = torch.randn(2, channels, 9, 9, generator=gen(2))
    xd, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    yd = op(xd)
    kernel_weight = elastic_kernel(weight, matrices, channels, kernel)
    ys = torch.func.functional_call(static, {"weight": kernel_weight}, (xs,))
    assert ys.shape == (2, channels, (9 - 1) // stride + 1, (9 - 1) // stride + 1)
    torch.testing.assert_close(yd, ys, atol=ATOL, rtol=1e-5)
    cotangent = torch.randn(yd.shape, generator=gen(3))
    (yd * cotangent).sum().backward()
    (ys * cotangent).sum().backward()
    torch.testing.assert_close(xd.grad, xs.grad, atol=ATOL, rtol=1e-5)
    start = (7 - kernel) // 2
    # Without a transform the kernel is the plain centre crop, so its gradient lands there and only there.
    index = (slice(channels),) if transform else (slice(channels), slice(None), slice(start, start + kernel),
                                                  slice(start, start + kernel))
    assert_grad_is_slice(op, "weight", index, weight.grad[index])
    for name, matrix in op.transforms.items():
        used = int(name[2:]) >= kernel
        if used:
            # each entry sums products over every channel and position, in another order in the folded
            # path than in the step-by-step one: float32 rounding reaches a few 1e-5 on some CPUs
            torch.testing.assert_close(matrix.grad, matrices[name].grad, atol=1e-4, rtol=1e-4)
        else:
            assert matrix.grad is None and matrices[name].grad is None
    twin = op.to_static()
    assert (type(twin), twin.kernel_size, twin.stride, twin.groups) == (nn.Conv2d, (kernel, kernel),
                                                                        (stride, stride), channels)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), ys, atol=ATOL, rtol=1e-5)
    assert_no_shared_storage(twin, op)


def test_transforms_start_as_the_identity() -> None:
    """Freshly built, a small kernel is exactly the centre of the large one."""
    op = DynamicDepthwiseConv2d(4, (3, 5, 7), 1, transform=True)
    op.set_active(4, 3)
    assert torch.equal(op.to_static().weight, op.weight[:, :, 2:5, 2:5])


def test_kernel_transform_keeps_only_learned_matrices_in_its_state() -> None:
    """The crop-selection matrices are constants: out of the state dict, yet moved along by `.to()`."""
    op = DynamicDepthwiseConv2d(4, (3, 5, 7), 1, transform=True)
    assert sorted(op.state_dict()) == ["transforms.to3", "transforms.to5", "weight"]
    op = op.to(torch.float64)
    op.set_active(4, 3)
    assert op.to_static().weight.dtype == torch.float64
    assert torch.equal(op.to_static().weight, op.weight[:, :, 2:5, 2:5])


# ----- batch norm


def bn_twin(op: DynamicBatchNorm2d, c: int, momentum: float | None) -> nn.BatchNorm2d:
    static = nn.BatchNorm2d(c, eps=op.eps, momentum=momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(static, name).copy_(getattr(op, name)[:c])
        static.num_batches_tracked.copy_(op.num_batches_tracked)
    return static


@CHUNKED
@pytest.mark.parametrize("channels", [3, 8, 12])
def test_batch_norm_eval(channels: int, chunked: bool) -> None:
    op = DynamicBatchNorm2d(12, sizes=(3, 5) if chunked else ())
    randomize(op, channels)
    op.set_active(channels)
    static = bn_twin(op, channels, 0.1)
    op.eval()
    static.eval()
    x = torch.randn(4, channels, 3, 5, generator=gen(4))
    yd, ys, gd, gs = run_both(op, static, x)
    torch.testing.assert_close(yd, ys, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(gd, gs, atol=ATOL, rtol=1e-5)
    assert_grad_is_slice(op, "weight", (slice(channels),), static.weight.grad)
    assert_grad_is_slice(op, "bias", (slice(channels),), static.bias.grad)
    with torch.no_grad():  # the cached path
        torch.testing.assert_close(op(x), ys, atol=ATOL, rtol=1e-5)
    twin = op.to_static()
    for k, v in static.state_dict().items():
        assert torch.equal(twin.state_dict()[k], v), k
    assert_no_shared_storage(twin, op)


@CHUNKED
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("channels", [3, 8, 12])
def test_batch_norm_train_updates_running_stats_like_its_twin(channels: int, momentum: float | None,
                                                              chunked: bool) -> None:
    op = DynamicBatchNorm2d(12, momentum=momentum, sizes=(3, 5) if chunked else ())
    randomize(op, channels + 7)
    op.set_active(channels)
    static = bn_twin(op, channels, momentum)
    untouched = (op.running_mean[channels:].clone(), op.running_var[channels:].clone())
    op.train()
    static.train()
    for step in range(4):
        x = torch.randn(5, channels, 4, 3, generator=gen(10 + step)) * (step + 1) + step
        op.zero_grad()
        static.zero_grad()
        yd, ys, gd, gs = run_both(op, static, x)
        torch.testing.assert_close(yd, ys, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(gd, gs, atol=1e-4, rtol=1e-4)
        assert_grad_is_slice(op, "weight", (slice(channels),), static.weight.grad)
        assert_grad_is_slice(op, "bias", (slice(channels),), static.bias.grad)
        torch.testing.assert_close(op.running_mean[:channels], static.running_mean, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(op.running_var[:channels], static.running_var, atol=ATOL, rtol=1e-5)
        assert int(op.num_batches_tracked) == int(static.num_batches_tracked) == step + 1
    assert torch.equal(op.running_mean[channels:], untouched[0])
    assert torch.equal(op.running_var[channels:], untouched[1])


def test_batch_norm_cumulative_mode_is_the_plain_average() -> None:
    """momentum=None after a reset: running stats are the mean of the batch means and unbiased variances."""
    op = DynamicBatchNorm2d(10, momentum=None)
    op.set_active(6)
    op.reset_running_stats()
    op.train()
    batches = [torch.randn(4, 6, 3, 3, generator=gen(20 + i)) * (i + 1) for i in range(3)]
    with torch.no_grad():
        for x in batches:
            op(x)
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in batches]).mean(0)
    variances = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in batches]).mean(0)
    torch.testing.assert_close(op.running_mean[:6], means, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(op.running_var[:6], variances, atol=ATOL, rtol=1e-5)
    assert torch.equal(op.running_mean[6:], torch.zeros(4)) and torch.equal(op.running_var[6:], torch.ones(4))


def test_batch_norm_is_a_torch_batch_norm() -> None:
    """Generic BN code (recalibration, SyncBatchNorm conversion) finds it."""
    assert isinstance(DynamicBatchNorm2d(4), nn.modules.batchnorm._BatchNorm)
    with pytest.raises(ValueError, match="cannot run 5"):
        DynamicBatchNorm2d(4).set_active(5)


# ----- squeeze-and-excite


@CHUNKED
@pytest.mark.parametrize(("channels", "hidden"), list(itertools.product((8, 16), (4, 8))))
def test_squeeze_excite(channels: int, hidden: int, chunked: bool) -> None:
    # Chunked: channels 8 ends a block, hidden 4 lies inside one.
    sizes = {"channel_sizes": (8,), "hidden_sizes": (3, 6)} if chunked else {}
    op = DynamicSqueezeExcite(16, 8, **sizes)
    randomize(op, channels + hidden)
    op.set_active(channels, hidden)
    static = SqueezeExcitation(channels, hidden, nn.ReLU, nn.Hardsigmoid)
    with torch.no_grad():
        static.fc1.weight.copy_(op.fc1_weight[:hidden, :channels])
        static.fc1.bias.copy_(op.fc1_bias[:hidden])
        static.fc2.weight.copy_(op.fc2_weight[:channels, :hidden])
        static.fc2.bias.copy_(op.fc2_bias[:channels])
    x = torch.randn(3, channels, 4, 4, generator=gen(5))
    yd, ys, gd, gs = run_both(op, static, x)
    torch.testing.assert_close(yd, ys, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(gd, gs, atol=ATOL, rtol=1e-5)
    assert_grad_is_slice(op, "fc1_weight", (slice(hidden), slice(channels)), static.fc1.weight.grad)
    assert_grad_is_slice(op, "fc1_bias", (slice(hidden),), static.fc1.bias.grad)
    assert_grad_is_slice(op, "fc2_weight", (slice(channels), slice(hidden)), static.fc2.weight.grad)
    assert_grad_is_slice(op, "fc2_bias", (slice(channels),), static.fc2.bias.grad)
    with torch.no_grad():
        torch.testing.assert_close(op(x), ys, atol=ATOL, rtol=1e-5)
    twin = op.to_static()
    assert type(twin) is SqueezeExcitation
    for k, v in static.state_dict().items():
        assert torch.equal(twin.state_dict()[k], v), k
    assert_no_shared_storage(twin, op)


def test_dynamic_ops_match_in_channels_last() -> None:
    """The memory format training uses: every op still equals its twin."""
    x = torch.randn(2, 8, 7, 7, generator=gen(6)).contiguous(memory_format=torch.channels_last)
    ops = [(DynamicPointConv2d(12, 10, in_sizes=(4,), out_sizes=(6,)), (8, 6)),
           (DynamicDepthwiseConv2d(12, (3, 5, 7), 1, channel_sizes=(4,)), (8, 3)),
           (DynamicSqueezeExcite(12, 4, channel_sizes=(8,)), (8, 4)),
           (DynamicBatchNorm2d(12, sizes=(4,)), (8,))]
    for op, active in ops:
        randomize(op, 0)
        op = op.to(memory_format=torch.channels_last).eval()
        op.set_active(*active)
        twin = op.to_static().eval().to(memory_format=torch.channels_last)
        with torch.no_grad():
            torch.testing.assert_close(op(x), twin(x), atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(op(x), twin(x), atol=ATOL, rtol=1e-5)
