"""The runtimes a latency is measured in: what the exported model runs in on the target.

A `Runtime` prepares one graph (a torch module, or ONNX bytes as `supernet.onnx_io` exports them) for one
input shape and returns a callable that runs it once; `sync` waits for the device. `open_runtime` picks
the implementation from the settings and says in one line which package to install when it is missing.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernet.latency.settings import LatencyConfig, LatencySettingsError, TargetUnavailableError

Graph = nn.Module | bytes
Run = Callable[[], object]

_ORT_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
               "all": "ORT_ENABLE_ALL"}
_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def target_present(target: str) -> bool:
    return target == "cpu" or (target == "gpu" and torch.cuda.is_available())


def require_target(target: str) -> None:
    """Raise the one-line explanation when `target` cannot be measured on this machine."""
    if not target_present(target):
        raise TargetUnavailableError(
            f"--target {target}: no CUDA device on this machine; build the table on the GPU machine "
            f"(`supernet lut build --target {target}` there) and pass the file to search with `--lut FILE`")


def device_name(target: str) -> str:
    """The GPU's name, or the CPU model as the kernel reports it."""
    if target == "gpu":
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown cpu"


class Runtime:
    """One runtime with one fixed set of settings; a context manager around a batch of timings."""

    name = ""
    takes_onnx = True  # prepare() wants ONNX bytes (else a torch module)

    def __init__(self, cfg: LatencyConfig):
        self.cfg = cfg

    def prepare(self, graph: Graph, input_shape: tuple[int, ...]) -> Run:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait until the work the last call queued on the device is done."""

    def identity(self) -> dict[str, Any]:
        """The fingerprint fields of this runtime: name, version, providers, precision, optimisation."""
        raise NotImplementedError

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class OnnxRuntime(Runtime):
    """onnxruntime: the CPU provider on cpu, CUDA's on gpu; inputs and outputs bound on the device."""

    name = "onnxruntime"

    def __init__(self, cfg: LatencyConfig):
        super().__init__(cfg)
        try:
            import onnxruntime
        except ImportError:
            package = "onnxruntime-gpu" if cfg.target == "gpu" else "onnxruntime"
            raise LatencySettingsError(f"runtime={self.name} needs it: pip install {package}") from None
        self.ort = onnxruntime
        self.providers = self._providers()
        missing = [p if isinstance(p, str) else p[0] for p in self.providers]
        missing = [p for p in missing if p not in onnxruntime.get_available_providers()]
        if missing:
            raise LatencySettingsError(f"runtime={self.name}: onnxruntime {onnxruntime.__version__} here has "
                                       f"no {missing[0]}: {self._install_hint()}")
        if cfg.resolved_precision not in self._precisions():
            raise LatencySettingsError(
                f"precision={cfg.resolved_precision}: runtime={self.name} runs the exported float32 graph; "
                f"choose precision={' or '.join(self._precisions())} (float16 needs runtime=tensorrt)")
        self.device = "cuda" if cfg.target == "gpu" else "cpu"

    def _providers(self) -> list[Any]:
        return ["CUDAExecutionProvider"] if self.cfg.target == "gpu" else ["CPUExecutionProvider"]

    def _precisions(self) -> tuple[str, ...]:
        return ("float32",)

    def _install_hint(self) -> str:
        return "pip install onnxruntime-gpu (in place of onnxruntime)"

    def session_options(self) -> Any:
        options = self.ort.SessionOptions()
        options.graph_optimization_level = getattr(self.ort.GraphOptimizationLevel,
                                                   _ORT_LEVELS[self.cfg.graph_optimization])
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if self.cfg.target == "cpu" and self.cfg.threads:
            options.intra_op_num_threads = self.cfg.threads
        options.log_severity_level = 3  # warnings about the machine, not the model, are not the user's
        return options

    def prepare(self, graph: Graph, input_shape: tuple[int, ...]) -> Run:
        if not isinstance(graph, bytes):
            raise TypeError(f"{self.name} times ONNX graphs, not {type(graph).__name__}")
        session = self.ort.InferenceSession(graph, self.session_options(), providers=self.providers)
        x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
        binding = session.io_binding()
        binding.bind_ortvalue_input(session.get_inputs()[0].name,
                                    self.ort.OrtValue.ortvalue_from_numpy(x, self.device, 0))
        for output in session.get_outputs():
            binding.bind_output(output.name, self.device)

        def run() -> None:
            session.run_with_iobinding(binding)

        return run

    def identity(self) -> dict[str, Any]:
        return {"runtime": self.name, "runtime_version": self.ort.__version__,
                "providers": [p if isinstance(p, str) else p[0] for p in self.providers],
                "graph_optimization": self.cfg.graph_optimization, "precision": self.cfg.resolved_precision}


class TensorRTRuntime(OnnxRuntime):
    """TensorRT through onnxruntime's TensorRT provider (CUDA's for what TensorRT does not take)."""

    name = "tensorrt"

    def __init__(self, cfg: LatencyConfig):
        if cfg.target != "gpu":
            raise LatencySettingsError("runtime=tensorrt runs on --target gpu; on cpu: runtime=onnxruntime")
        super().__init__(cfg)

    def _providers(self) -> list[Any]:
        fp16 = self.cfg.resolved_precision == "float16"
        return [("TensorrtExecutionProvider", {"trt_fp16_enable": fp16}), "CUDAExecutionProvider"]

    def _precisions(self) -> tuple[str, ...]:
        return ("float16", "float32")

    def _install_hint(self) -> str:
        return "pip install 'supernet[tensorrt]' (onnxruntime-gpu and tensorrt)"

    def identity(self) -> dict[str, Any]:
        try:
            import tensorrt
            version = tensorrt.__version__
        except ImportError:
            version = None
        return {**super().identity(), "tensorrt_version": version}


class TorchRuntime(Runtime):
    """torch eager mode: the module as `supernet export`'s safetensors + static child would run it."""

    name = "torch"
    takes_onnx = False

    def __init__(self, cfg: LatencyConfig):
        super().__init__(cfg)
        self.device = torch.device("cuda" if cfg.target == "gpu" else "cpu")
        self.dtype = _TORCH_DTYPES[cfg.resolved_precision]
        self._saved: tuple[int, bool] | None = None

    def __enter__(self) -> TorchRuntime:
        self._saved = (torch.get_num_threads(), torch.backends.cudnn.benchmark)
        if self.cfg.target == "cpu" and self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        if self.cfg.target == "gpu":
            torch.backends.cudnn.benchmark = self.cfg.cudnn_benchmark
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved[0])
            torch.backends.cudnn.benchmark = self._saved[1]
            self._saved = None

    def prepare(self, graph: Graph, input_shape: tuple[int, ...]) -> Run:
        if not isinstance(graph, nn.Module):
            raise TypeError("the torch runtime times modules, not ONNX bytes")
        module = graph.eval().to(device=self.device, dtype=self.dtype)
        x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0)).to(self.device, self.dtype)
        if self.cfg.channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)

        @torch.inference_mode()
        def run() -> None:
            module(x)

        return run

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def identity(self) -> dict[str, Any]:
        gpu = self.cfg.target == "gpu"
        return {"runtime": self.name, "runtime_version": torch.__version__,
                "precision": self.cfg.resolved_precision,
                "memory_format": "channels_last" if self.cfg.channels_last else "contiguous",
                # CUDA and cuDNN versions only change GPU timings; a CPU table stays valid across CUDA builds
                "cuda": torch.version.cuda if gpu else None,
                "cudnn": torch.backends.cudnn.version() if gpu else None,
                "cudnn_benchmark": self.cfg.cudnn_benchmark if gpu else None}


RUNTIME_CLASSES: dict[str, type[Runtime]] = {c.name: c for c in (OnnxRuntime, TensorRTRuntime, TorchRuntime)}


def open_runtime(cfg: LatencyConfig) -> Runtime:
    """The runtime the settings name, on a target present here (else the one-line error)."""
    require_target(cfg.target)
    return RUNTIME_CLASSES[cfg.resolved_runtime](cfg)


def fingerprint_of(cfg: LatencyConfig, runtime: Runtime) -> dict[str, Any]:
    """What a table measured here, now, with `cfg` in `runtime` would carry as its fingerprint."""
    return {"target": cfg.target, "device": device_name(cfg.target),
            "torch": torch.__version__,  # the exporter of the ONNX graphs, or the runtime itself
            "threads": cfg.threads if cfg.target == "cpu" else None,
            "batch_size": cfg.batch_size, **runtime.identity()}
