"""The optimizer the trainer builds: which tensors decay, and the per-device update kernels."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from supernet.models import Supernet
from supernet.ops import DynamicBatchNorm2d, DynamicDepthwiseConv2d
from supernet.train.optim import build_optimizer


def test_only_conv_and_linear_weights_decay_and_cpu_uses_foreach(small_space):
    model = Supernet(small_space)
    cfg = OmegaConf.create({"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-5,
                            "bn_weight_decay": False})
    optimizer = build_optimizer(model, cfg, torch.device("cpu"))
    decay, no_decay = ({id(p) for p in group["params"]} for group in optimizer.param_groups)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [5e-5, 0.0]
    assert decay | no_decay == {id(p) for p in model.parameters()} and not decay & no_decay
    block = model.stages[1][0]
    # every block of a chunked tensor lands where the whole tensor would
    assert {id(p) for p in block.expand[0].blocks("weight")} <= decay
    assert isinstance(block.expand[1], DynamicBatchNorm2d)
    assert {id(p) for p in (*block.expand[1].blocks("weight"), *block.expand[1].blocks("bias"))} <= no_decay
    depthwise = block.depthwise[0]
    assert isinstance(depthwise, DynamicDepthwiseConv2d)
    assert {id(p) for p in depthwise.transforms.parameters()} <= no_decay
    assert {id(p) for p in depthwise.blocks("weight")} <= decay
    assert optimizer.defaults["foreach"] is True
