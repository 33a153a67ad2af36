"""Data-parallel training over processes started by torchrun, with torch's DistributedDataParallel.

Launch: `torchrun --nproc-per-node N -m supernet_cli.main train ...` (see docs/distributed.md). torchrun
sets RANK, LOCAL_RANK and WORLD_SIZE; `distributed_session` opens the process group from them (nccl for
CUDA, gloo for CPU) with a timeout, and closes it. A single process, launched by torchrun or not, opens
nothing.

The training loop asks a `SingleProcess` or a `DataParallel` for everything that differs between the two,
so the single-process path stays what it was: no wrapper, no collective, no extra host sync.

- Batches: each rank takes its shard of every global batch of the single-process order
  (`GlobalBatchShardSampler`), so W ranks × batch B train on the batches one process × batch W·B would.
- Gradients: the forward runs through DDP, and gradients are reduced once per optimizer step (`no_sync`
  for every child but the last). DDP with `find_unused_parameters=True` still averages the parameters
  that only earlier children used: its reducer marks a parameter used (`local_used_map`) in every
  backward pass, `no_sync` ones included, and resets the map only after the synchronised one
  (docs/distributed.md gives the details; tests/train/test_distributed.py checks it end to end).
- Agreement: loss means (logs and the divergence guard), the stop signal, accuracy over evaluation
  shards, a periodic check that every rank trains the same children, the teacher of progressive
  shrinking, and the per-rank random states saved in checkpoints.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler, Sampler

from supernet.data import derive_seed
from supernet.errors import SupernetError
from supernet.ops.sync_batchnorm import SyncDynamicBatchNorm2d
from supernet.train.config import DistributedConfig

_RANK_SALT = 0x52414E4B  # keeps the rank streams apart from the per-step seeds derive_seed(seed, step)
_SIGNALS = (None, "SIGINT", "SIGTERM")  # the index is the code all-reduced with MAX: SIGTERM wins

# Running BN statistics are not read by the training forward (it normalises with batch statistics) and
# are recalibrated before every evaluation, so DDP's broadcast of buffers before each forward would be
# pure cost. torch 2.14 renamed the switch and deprecated the old name.
_NO_BUFFER_BROADCAST = ({"forward_sync_buffers": False}
                        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                        else {"broadcast_buffers": False})


class DistributedError(SupernetError):
    """A distributed setting or launch that cannot work, or ranks that disagree; the message names the fix."""


# ---------------------------------------------------------------------------------------------- settings
class DistributedSettings(DistributedConfig):
    """The `distributed:` node of the training config (read only when more than one process runs)."""

    @classmethod
    def from_config(cls, cfg: DictConfig) -> DistributedSettings:
        return cls(**OmegaConf.to_container(cfg.distributed, resolve=True))

    def backend_for(self, device: torch.device) -> str:
        if self.backend == "auto":
            return "nccl" if device.type == "cuda" else "gloo"
        if self.backend == "nccl" and device.type != "cuda":
            raise DistributedError(f"distributed.backend=nccl needs CUDA devices, but this run trains on "
                                   f"{device}; use distributed.backend=auto (gloo on CPU) or gloo")
        return self.backend


# ---------------------------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among `size` processes and its rank on its node."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and draws progress bars."""
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """The seed of this rank's own random stream (augmentation, dropout). Rank 0 keeps `seed`, so it
        draws what a single process draws; the other ranks draw independent streams."""
        return seed if self.rank == 0 else derive_seed(seed, _RANK_SALT, self.rank)

    def device_name(self, requested: str) -> str:
        """The device this rank trains on: `cuda:LOCAL_RANK` for auto/cuda when there are GPUs."""
        if self.size == 1 or requested == "cpu":
            return requested
        if requested not in ("auto", "cuda"):
            raise DistributedError(f"device={requested}: with {self.size} processes each one uses its own "
                                   "GPU (cuda:LOCAL_RANK); use device=auto, device=cuda or device=cpu")
        if not torch.cuda.is_available():
            if requested == "cuda":
                raise DistributedError("device=cuda was asked for but this machine has no CUDA device; "
                                       "use device=auto or device=cpu (gloo)")
            return "cpu"
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise DistributedError(f"LOCAL_RANK={self.local_rank}, but this node has {count} CUDA "
                                   f"device(s): start at most {count} processes per node "
                                   f"(torchrun --nproc-per-node {count})")
        return f"cuda:{self.local_rank}"

    def own_rng(self, state: Mapping[str, Any]) -> dict[str, Tensor] | None:
        """This rank's saved random state in a checkpoint; None when the checkpoint has none for it (it was
        written by fewer processes), and the rank must start a fresh stream."""
        per_rank = state.get("rng_per_rank")
        if per_rank is not None and self.rank < len(per_rank):
            return per_rank[self.rank]
        return state["rng"] if self.rank == 0 else None


def world_from_env(environ: Mapping[str, str] = os.environ) -> World:
    """The world torchrun describes in RANK, LOCAL_RANK and WORLD_SIZE (a single process without them)."""
    size = _env_int(environ, "WORLD_SIZE", 1)
    if size <= 1:
        return World()
    rank, local_rank = _env_int(environ, "RANK", None), _env_int(environ, "LOCAL_RANK", 0)
    if not 0 <= rank < size:
        raise DistributedError(f"RANK={rank} is outside WORLD_SIZE={size}; start the processes with torchrun")
    return World(rank=rank, local_rank=local_rank, size=size)


def current_world() -> World:
    """The world of the process group already open in this process, else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(rank=dist.get_rank(), local_rank=_env_int(os.environ, "LOCAL_RANK", 0),
                 size=dist.get_world_size())


def _env_int(environ: Mapping[str, str], name: str, default: int | None) -> int:
    value = environ.get(name)
    if value is None:
        if default is None:
            raise DistributedError(f"{name} is not set although WORLD_SIZE > 1; start the processes "
                                   "with torchrun")
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name}={value!r} is not an integer") from None


@contextmanager
def distributed_session(cfg: DictConfig) -> Iterator[World]:
    """The process group of one command: opened from torchrun's environment, closed at the end.

    Nested sessions (the CLI's around the library's) share the group the outer one opened; a process
    opens one group in its life (reopening one on torchrun's store is not reliable). On success
    every rank waits for the others before closing, so none tears the group down under a slower one.
    On failure the error is recorded for torchrun's summary and the rank says why it stopped; torchrun
    then ends the other ranks, and a rank blocked in a collective gives up after `timeout_s` anyway.
    """
    if dist.is_available() and dist.is_initialized():
        yield current_world()
        return
    world = world_from_env()
    if world.size == 1:
        yield world
        return
    settings, backend, failed = DistributedSettings(), "gloo", False
    try:
        settings = DistributedSettings.from_config(cfg)
        device = torch.device(world.device_name(cfg.device))
        backend = settings.backend_for(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=timedelta(seconds=settings.timeout_s),
                                device_id=device if backend == "nccl" else None)
        yield world
        dist.barrier()
    except BaseException as err:
        failed = True
        if isinstance(err, Exception):
            _report_failure(world, settings, err)
        raise
    finally:
        # After a failed collective an NCCL communicator may block its own destruction; the process is
        # about to exit, which frees it. Gloo closes its sockets at once, which frees the other ranks.
        if dist.is_initialized() and (not failed or backend == "gloo"):
            dist.destroy_process_group()


def _report_failure(world: World, settings: DistributedSettings, err: Exception) -> None:
    from torch.distributed.elastic.multiprocessing.errors import get_error_handler

    get_error_handler().record_exception(err)  # torchrun's failure summary shows it as the root cause
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    print(f"rank {world.rank} of {world.size} stopped: {type(err).__name__}: {message}\n"
          "  (if another rank failed first, its error is the cause; a rank waiting longer than "
          f"distributed.timeout_s={settings.timeout_s:g} s for the others ends the job)", file=sys.stderr)


def agree(world: World, value: Any) -> Any:
    """Rank 0's `value` on every rank (e.g. a default run directory named after the clock)."""
    if world.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------------------------------- samplers
class GlobalBatchShardSampler(DistributedSampler):
    """Rank r's shard of every global batch, the global batches in the single-process order.

    The single-process loader shuffles with `derive_seed(seed, epoch)` and cuts batches; here the cut is
    into global batches of B·W images, of which rank r takes images [r·B, (r+1)·B). So W ranks × batch B
    see exactly the batches of one process × batch B·W (a last, incomplete global batch is dropped there
    too), and a resume on another number of processes with the same global batch continues the same
    sequence. `set_epoch(epoch)` reshuffles, as for any DistributedSampler.
    """

    def __init__(self, dataset: Dataset, batch_size: int, world: World, seed: int) -> None:
        super().__init__(dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.batch_size = batch_size
        self.num_global_batches = len(dataset) // (batch_size * world.size)

    def __iter__(self) -> Iterator[int]:
        # The same permutation as make_loader's single-process order for (seed, epoch).
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.dataset), generator=generator)
        used = self.num_global_batches * self.num_replicas * self.batch_size
        shards = order[:used].view(self.num_global_batches, self.num_replicas, self.batch_size)
        return iter(shards[:, self.rank].reshape(-1).tolist())

    def __len__(self) -> int:
        return self.num_global_batches * self.batch_size


class ContiguousShard(Sampler[int]):
    """Indices [n·r/W, n·(r+1)/W) in order: every evaluation image is read by exactly one rank."""

    def __init__(self, size: int, world: World) -> None:
        self.start = size * world.rank // world.size
        self.stop = size * (world.rank + 1) // world.size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


# ---------------------------------------------------------------------------------------------- the plans
class SingleProcess:
    """One process: nothing to wrap, shard or agree on. Every method is free."""

    def prepare(self, model: nn.Module) -> nn.Module:
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def grad_sync(self, last: bool) -> AbstractContextManager:
        return nullcontext()

    def train_sampler(self, dataset: Dataset, batch_size: int, seed: int, epoch: int) -> Sampler[int] | None:
        return None  # make_loader's own order, a pure function of (seed, epoch)

    def eval_shard(self, size: int) -> Sampler[int] | None:
        return None

    def mean(self, values: Tensor) -> Tensor:
        return values

    def accuracy(self, accuracy: float, shard: Sampler[int] | None) -> float:
        return accuracy

    def agree_stop(self, requested: str | None, step: int, every: int) -> str | None:
        return requested

    def check_children(self, step: int, children: Sequence[Any]) -> None:
        pass

    def share_teacher(self, teacher: nn.Module | None) -> None:
        pass

    def gather(self, value: Any) -> list[Any] | None:
        return None


class DataParallel(SingleProcess):
    """Several processes, one device each: DDP for gradients, collectives for what ranks must agree on."""

    def __init__(self, world: World, settings: DistributedSettings, device: torch.device) -> None:
        if torch.torch_version.TorchVersion(torch.__version__) < (2, 4):
            # Older reducers forgot the parameters used only under no_sync (pytorch/pytorch#69031, fixed
            # by #124193): their gradients would stay per-rank, and the replicas would drift apart.
            raise DistributedError(f"training on several processes needs torch >= 2.4, found "
                                   f"{torch.__version__}")
        self.world, self.settings, self.device = world, settings, device
        self.ddp: DistributedDataParallel | None = None
        self._sampler: GlobalBatchShardSampler | None = None
        self._teacher: nn.Module | None = None

    def prepare(self, model: nn.Module) -> nn.Module:
        """Synchronised batch norm when asked for; otherwise each rank normalises its own batch."""
        return SyncDynamicBatchNorm2d.convert(model) if self.settings.sync_bn else model

    def wrap(self, model: nn.Module) -> nn.Module:
        # find_unused_parameters: every child leaves parameters unused (deeper blocks, other kernel
        # transforms), and without it DDP would wait for their gradients forever.
        self.ddp = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda"
                                           else None, find_unused_parameters=True, **_NO_BUFFER_BROADCAST)
        return self.ddp

    def grad_sync(self, last: bool) -> AbstractContextManager:
        """Gradients of the step's children accumulate locally; the last child's backward reduces them all."""
        if self.ddp is None:
            raise RuntimeError("DataParallel.grad_sync before wrap(): the model is not wrapped in DDP")
        return nullcontext() if last else self.ddp.no_sync()

    def train_sampler(self, dataset: Dataset, batch_size: int, seed: int, epoch: int) -> Sampler[int]:
        if self._sampler is None:
            self._sampler = GlobalBatchShardSampler(dataset, batch_size, self.world, seed)
        self._sampler.set_epoch(epoch)
        return self._sampler

    def eval_shard(self, size: int) -> Sampler[int]:
        return ContiguousShard(size, self.world)

    def mean(self, values: Tensor) -> Tensor:
        total = values.detach().clone()
        dist.all_reduce(total)
        return total / self.world.size

    def accuracy(self, accuracy: float, shard: Sampler[int] | None) -> float:
        """The accuracy over all shards, from each rank's accuracy over its own (exact: counts are summed)."""
        count = len(shard) if shard is not None else 0
        totals = torch.tensor([round(accuracy * count), count], dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return float(totals[0] / totals[1].clamp_min(1))

    def agree_stop(self, requested: str | None, step: int, every: int) -> str | None:
        """A stop signal that reached any rank stops every rank at the same step (polled every `every`
        steps, where the loop reads values back to the host anyway)."""
        if step % every:
            return None
        code = torch.tensor([_SIGNALS.index(requested) if requested in _SIGNALS else len(_SIGNALS) - 1],
                            device=self.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return _SIGNALS[int(code)]

    def check_children(self, step: int, children: Sequence[Any]) -> None:
        """Every `check_children_every` steps, compare a digest of the step's children across ranks."""
        every = self.settings.check_children_every
        if not every or step % every:
            return
        digest = int.from_bytes(hashlib.sha256(repr(list(children)).encode()).digest()[:7], "big")
        extremes = torch.tensor([digest, -digest], dtype=torch.int64, device=self.device)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)  # max and -min: equal digests iff max == min
        if int(extremes[0]) != -int(extremes[1]):
            archs = [str(getattr(child, "arch", child)) for child in children]
            raise DistributedError(f"step {step}: the ranks train different children (rank {self.world.rank} "
                                   f"runs {archs}); the children depend only on (seed, step), so check "
                                   "that every rank has the same config")

    def share_teacher(self, teacher: nn.Module | None) -> None:
        """Give every rank rank 0's teacher once, when the strategy makes one: it is extracted with BN
        running statistics, which each rank gathered from its own batches."""
        if teacher is None or teacher is self._teacher:
            return
        with torch.no_grad():
            for tensor in teacher.state_dict().values():
                buffer = tensor.contiguous()
                dist.broadcast(buffer, src=0)
                if buffer is not tensor:
                    tensor.copy_(buffer)
        self._teacher = teacher

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order (used at checkpoints only: it pickles)."""
        values: list[Any] = [None] * self.world.size
        dist.all_gather_object(values, value)
        return values


def data_parallel(world: World, cfg: DictConfig, device: torch.device) -> SingleProcess:
    """The plan for `world`: the free one for a single process."""
    if world.size == 1:
        return SingleProcess()
    return DataParallel(world, DistributedSettings.from_config(cfg), device)
