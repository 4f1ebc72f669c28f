"""The inference backends the bench knows, which of them this machine has, and how to open one.

A backend name says engine, device and precision: ``ort-cpu``, ``ort-cuda``, ``ort-trt`` (ONNX
Runtime execution providers, on an exported ONNX file) and ``torch-<device>-<dtype>`` (the PyTorch
module). Presence is decided from what the libraries report (``onnxruntime.get_available_providers()``,
``torch.cuda.is_available()``), passed in explicitly so the decision is testable without a GPU.
ONNX Runtime may still fall back to CPU when it creates the session; callers compare the granted
providers with ``BackendSpec.provider`` and skip a cell that did not get what it asked for.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import importlib.util

from posestream.errors import InputError
from posestream.runtime.precision import cpu_has_native_bf16

__all__ = ["BackendSpec", "BACKENDS", "machine_capabilities", "select_backends", "open_backend"]

_ORT_EP = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One benchmarkable backend.

    engine: "onnxruntime" or "torch". providers: ONNX Runtime short names in preference order
    (CPU is appended as fallback by the runtime). device / dtype: for torch.
    """

    name: str
    engine: str
    providers: tuple[str, ...] = ()
    device: str = "cpu"
    dtype: str = "fp32"

    @property
    def provider(self) -> str | None:
        """The ONNX Runtime execution provider this backend must be granted, or None (torch, OpenVINO)."""
        return _ORT_EP[self.providers[0]] if self.engine == "onnxruntime" else None

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda") or (self.engine == "onnxruntime" and self.providers[0] != "cpu")


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("ort-cpu", "onnxruntime", ("cpu",)),
        BackendSpec("ov-cpu-fp32", "openvino", ("cpu",), dtype="fp32"),
        BackendSpec("ov-cpu-bf16", "openvino", ("cpu",), dtype="bf16"),
        BackendSpec("ov-cpu-int8", "openvino", ("cpu",), dtype="int8"),  # NNCF, calibrated on train_mini
        BackendSpec("ort-cuda", "onnxruntime", ("cuda",)),
        BackendSpec("ort-trt", "onnxruntime", ("tensorrt", "cuda")),
        BackendSpec("torch-cpu-fp32", "torch", device="cpu", dtype="fp32"),
        BackendSpec("torch-cpu-bf16", "torch", device="cpu", dtype="bf16"),
        BackendSpec("torch-cuda-fp32", "torch", device="cuda", dtype="fp32"),
        BackendSpec("torch-cuda-fp16", "torch", device="cuda", dtype="fp16"),
        BackendSpec("torch-cuda-bf16", "torch", device="cuda", dtype="bf16"),
    )
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this machine's libraries report."""

    ort_providers: tuple[str, ...]
    torch_cuda: bool


def machine_capabilities() -> Capabilities:
    import onnxruntime as ort
    import torch

    return Capabilities(tuple(ort.get_available_providers()), bool(torch.cuda.is_available()))


def missing_reason(spec: BackendSpec, caps: Capabilities) -> str | None:
    """Why ``spec`` cannot run here, or None when it can (as far as the libraries say)."""
    if spec.engine == "openvino":
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed"
        if spec.dtype == "bf16" and not cpu_has_native_bf16():
            return "this CPU has no native bf16 (AVX512_BF16 / AMX)"
        return None
    if spec.engine == "onnxruntime":
        if spec.provider not in caps.ort_providers:
            return f"onnxruntime has no {spec.provider} (available: {', '.join(caps.ort_providers)})"
        return None
    if spec.device.startswith("cuda") and not caps.torch_cuda:
        return "torch sees no CUDA device"
    return None


def select_backends(
    requested: Sequence[str] | None, caps: Capabilities
) -> tuple[list[BackendSpec], dict[str, str]]:
    """(backends to run, {name: reason} for those left out).

    requested: names, or None for every backend present except int8 (it quantises with calibration
    crops from ../shared, so it runs only when named). An unknown name is an InputError; a known one
    this machine lacks is left out with its reason (the bench runs anywhere).
    """
    if requested is None:
        names = [name for name, spec in BACKENDS.items() if spec.dtype != "int8"]
    else:
        names = _check_names(requested, "--backends")
    selected, skipped = [], {}
    for name in names:
        reason = missing_reason(BACKENDS[name], caps)
        if reason is None:
            selected.append(BACKENDS[name])
        elif requested is not None:  # asked for by name: say why it did not run
            skipped[name] = reason
    return selected, skipped


def default_e2e_backends(selected: Iterable[BackendSpec]) -> list[BackendSpec]:
    """End-to-end runs default to the ONNX Runtime backends (the pipeline's usual engine) and, on a
    machine whose onnxruntime lacks CUDA, the torch CUDA backends (so a GPU is used end to end)."""
    cpu_engines = ("onnxruntime", "openvino")
    return [s for s in selected if (s.engine in cpu_engines and s.dtype != "int8") or s.device.startswith("cuda")]


def _check_names(names: Sequence[str], flag: str) -> list[str]:
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise InputError(f"{flag}: unknown backend {unknown[0]!r}; expected some of {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


def check_backend_names(names: Sequence[str], flag: str) -> list[str]:
    """Validate a list of backend names given on the command line (InputError on an unknown one)."""
    return _check_names(names, flag)


def open_backend(spec: BackendSpec, source, *, threads: int, calibration=None):
    """A ``PoseBackend`` for ``spec`` over a ``PoseModelSource``, from the runtime's one factory: its
    ONNX file, or a copy of its PyTorch module (``TorchPoseBackend`` converts the module in place,
    so every torch backend gets its own copy)."""
    from posestream.runtime.base import ModelInfo
    from posestream.runtime.factory import open_pose_backend

    if spec.engine == "onnxruntime":
        return open_pose_backend(source.onnx_file(), engine="onnxruntime", providers=spec.providers, threads=threads,
                                 precision="fp32")  # fmt: skip
    if spec.engine == "openvino":
        return open_pose_backend(source.onnx_file(), engine="openvino", threads=threads, precision=spec.dtype,
                                 calibration=calibration)  # fmt: skip
    model = copy.deepcopy(source.torch_model())
    info = ModelInfo(variant=source.variant or "", random_weights=source.torch_random)
    return open_pose_backend(model, device=spec.device, precision=spec.dtype, info=info)
