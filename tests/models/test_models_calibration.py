"""BN recalibration of a supernet child equals recalibrating its extracted twin, and is the plain average."""

from __future__ import annotations

import copy
import random

import torch
from torch import Tensor, nn

from supernet.models import active_state_dict
from supernet.run.bn_recalibration import recalibrate_bn, resize_batch
from supernet.space import SearchSpace


def batches(seed: int, count: int = 3, size: int = 32) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 1, size, size, generator=g) * (i + 1) + 0.5 * i for i in range(count)]


def plain_statistics(model: nn.Module, data: list[Tensor], resolution: int
                     ) -> dict[str, tuple[Tensor, Tensor]]:
    """Per BN layer: the mean over batches of each batch's channel mean and unbiased variance."""
    model = copy.deepcopy(model).eval()
    seen: dict[str, list[tuple[Tensor, Tensor]]] = {}

    def record(name: str):
        def hook(_module, inputs) -> None:
            x = inputs[0]
            seen.setdefault(name, []).append((x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=True)))
        return hook

    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()  # as during recalibration: batch statistics, so each layer sees the same input
            m.register_forward_pre_hook(record(name))
    with torch.no_grad():
        for x in data:
            model(resize_batch(x, resolution))
    return {name: (torch.stack([m for m, _ in stats]).mean(0), torch.stack([v for _, v in stats]).mean(0))
            for name, stats in seen.items()}


def test_recalibrated_child_statistics(small_space: SearchSpace, make_supernet) -> None:
    net = make_supernet(small_space, 21)
    arch = small_space.sample(random.Random(21))
    net.set_active(arch)
    child = net.extract(arch)  # taken before: it carries the supernet's stale statistics
    data = batches(0)
    recalibrate_bn(net, data, arch.resolution)
    recalibrate_bn(child, data, arch.resolution)
    assert not net.training and not child.training
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))

    plain = plain_statistics(child, data, arch.resolution)
    assert len(plain) == sum(isinstance(m, nn.BatchNorm2d) for m in child.modules())
    recalibrated = child.state_dict()
    for name, (mean, var) in plain.items():
        torch.testing.assert_close(recalibrated[f"{name}.running_mean"], mean, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(recalibrated[f"{name}.running_var"], var, atol=1e-5, rtol=1e-4)

    for i, (static, dynamic) in enumerate(zip(child, net.active_modules(), strict=True)):
        ours = active_state_dict(dynamic)
        for name, tensor in static.state_dict().items():
            if "running" in name:
                torch.testing.assert_close(ours[name], tensor, atol=1e-5, rtol=1e-4, msg=f"{i}.{name}")

    x = resize_batch(batches(1, count=1)[0], arch.resolution)
    with torch.no_grad():
        torch.testing.assert_close(net(x), child(x), atol=1e-5, rtol=1e-4)


def test_recalibration_replaces_stale_statistics(small_space: SearchSpace, make_supernet) -> None:
    """Two different stale starting points end at the same statistics: nothing of the old ones survives."""
    arch = small_space.min()
    data = batches(2)
    results = []
    for seed in (1, 2):
        net = make_supernet(small_space, 1)
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.normal_(generator=g)
        net.set_active(arch)
        recalibrate_bn(net, data, arch.resolution)
        results.append(torch.cat([b for n, b in net.named_buffers() if "running" in n]))
    torch.testing.assert_close(results[0], results[1], atol=0, rtol=0)
