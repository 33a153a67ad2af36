"""The schema of `supernet train`: every key, its default and its range, written once.

`configs/train.yaml` only chooses the space and the strategy and may override values; a run directory's
`config.yaml` is this schema resolved. The space and the strategy are data files validated by their own
readers (`SearchSpace`, `supernet.train.strategies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supernet.config import setting


@dataclass
class AugmentConfig:
    # auto: random_resized for an image folder (in the loader workers), pad otherwise (on the device)
    crop: str = setting("auto", choices=("auto", "pad", "random_resized"))
    pad: int = setting(2, ge=0)  # crop=pad: random-crop padding in pixels (0: off)
    flip: bool = True  # random horizontal flip
    scale: list[float] = setting([0.08, 1.0])  # crop=random_resized: crop area as a fraction of the image
    ratio: list[float] = setting([0.75, 4 / 3])  # crop=random_resized: crop width / height


@dataclass
class SyntheticConfig:
    num_classes: int = setting(10, ge=2)
    image_size: int = setting(28, ge=8)
    channels: int = setting(1, choices=(1, 3))
    train_size: int = setting(2048, ge=1)
    test_size: int = setting(512, ge=1)


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # fashion_mnist | cifar10 | imagefolder | synthetic
    root: str | None = None  # null: the dataset's default location
    download: bool = False  # cifar10 / fashion_mnist: fetch with torchvision when missing
    image_size: int | None = setting(None, ge=8)  # imagefolder: decode size (null: the space's largest)
    eval_crop: float = setting(0.875, gt=0, le=1)  # imagefolder eval: resize to image_size / eval_crop, crop
    decode: str = setting("pil", choices=("pil", "cuda"))  # imagefolder training crops: loader workers | GPU
    bad_images: str = setting("error", choices=("error", "skip"))  # unreadable files: stop naming one | skip
    val_size: int = setting(5000, ge=0)  # training images held out for validation (and later search)
    subset: int | None = setting(None, ge=1)  # use only this many training images (quick runs)
    val_subset: int | None = setting(None, ge=1)
    test_subset: int | None = setting(None, ge=1)
    batch_size: int = setting(128, ge=1)
    num_workers: int = setting(0, ge=0)
    augment: AugmentConfig = setting(AugmentConfig())
    synthetic: SyntheticConfig = setting(SyntheticConfig())


@dataclass
class OptimConfig:
    name: str = setting("sgd", choices=("sgd", "adamw"))  # sgd is Nesterov when `nesterov`
    lr: float = setting(0.1, gt=0)  # for batch_size 128; not rescaled automatically
    momentum: float = setting(0.9, ge=0, le=1)
    nesterov: bool = True
    weight_decay: float = setting(3.0e-5, ge=0)
    bn_weight_decay: bool = False  # BigNAS: no weight decay on BN and biases
    grad_clip: float | None = setting(1.0, gt=0)  # max global grad norm (null: off)
    betas: list[float] = setting([0.9, 0.999])  # adamw only


@dataclass
class ScheduleConfig:
    name: str = setting("cosine", choices=("cosine", "exponential", "constant"))
    warmup_epochs: float = setting(0.5, ge=0)
    min_lr_ratio: float = setting(0.0, ge=0, le=1)  # final lr / base lr
    decay: float = setting(0.97, gt=0, le=1)  # exponential: lr multiplier per epoch


@dataclass
class GuardConfig:
    max_loss: float = setting(50.0, gt=0)  # a loss above this (or NaN/inf) stops or rolls back the run
    action: str = setting("stop", choices=("stop", "rollback"))  # rollback: reload last.pt, halve the lr
    max_rollbacks: int = setting(3, ge=0)  # rollbacks per run before it stops


@dataclass
class LogConfig:
    every: int = setting(50, ge=1)  # steps between metric lines (the only host syncs of the loop)
    progress: Any = setting("auto", choices=("auto", True, False))  # auto: only on a terminal
    tensorboard: bool = False


@dataclass
class ValConfig:
    every_epochs: int = setting(1, ge=1)
    middle_children: int = setting(2, ge=0)  # fixed middle children evaluated besides max and min
    calib_images: int = setting(2000, ge=1)  # images for BN recalibration before each validation
    calib_batch_size: int = setting(256, ge=1)
    batch_size: int = setting(512, ge=1)


@dataclass
class DistributedConfig:
    backend: str = setting("auto", choices=("auto", "nccl", "gloo"))  # auto: nccl on CUDA, gloo on CPU
    sync_bn: bool = False  # true: global-batch BN statistics; false: per rank, as BigNAS and OFA
    timeout_s: float = setting(600, gt=0)  # a rank waiting this long for the others ends the job
    check_children_every: int = setting(1000, ge=0)  # steps between same-children checks (0: off)


@dataclass
class SandwichConfig:
    """BigNAS sandwich rule with in-place distillation."""

    name: str = "sandwich"
    num_random: int = setting(1, ge=0)  # random children per step besides max and min (BigNAS: 2)
    distill: str = setting("kl", choices=("kl", "ce"))  # kl: soft targets of the max child | ce: its labels
    distill_temperature: float = setting(1.0, gt=0)
    max_dropout: bool = True  # dropout applies to the max child only


@dataclass
class ProgressiveShrinkingConfig:
    """Once-for-All progressive shrinking; the phases are read by `supernet.train.strategies.phases`."""

    name: str = "progressive_shrinking"
    distill_temperature: float = setting(1.0, gt=0)
    dropout: bool = True  # the space's head dropout on every child (OFA trains all children with it)
    fresh_optimizer: str = setting("every_phase", choices=("every_phase", "after_sort"))
    phases: list[Any] = setting([])


@dataclass
class TrainConfig:
    space: Any = None  # chosen in train.yaml's defaults (configs/space/*.yaml)
    strategy: Any = None  # chosen in train.yaml's defaults (configs/strategy/*.yaml)
    seed: int = setting(0, ge=0)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = setting("auto", choices=("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = True  # NHWC activations; on a 2-core CPU it roughly halves a step
    threads: int | None = setting(None, ge=1)  # CPU intra-op threads (null: torch's default)
    data: DataConfig = setting(DataConfig())
    optim: OptimConfig = setting(OptimConfig())
    schedule: ScheduleConfig = setting(ScheduleConfig())
    epochs: float = setting(6.0, gt=0)  # with the sandwich default, about 18.5 minutes on a 2-core CPU
    max_steps: int | None = setting(None, ge=1)  # stop after this many optimizer steps (null: all epochs)
    label_smoothing: float = setting(0.1, ge=0, le=1)
    zero_init_residual: bool = True  # BigNAS init: zero scale on each residual block's last BN
    guard: GuardConfig = setting(GuardConfig())
    log: LogConfig = setting(LogConfig())
    val: ValConfig = setting(ValConfig())
    run_dir: str | None = None  # null: runs/<timestamp>
    checkpoint_every_steps: int = setting(0, ge=0)  # 0: only at epoch ends (and on interrupt)
    distributed: DistributedConfig = setting(DistributedConfig())
