"""The one place that builds pose backends: ``open_pose_backend``.

Run, eval, bench, the Python API and batch all call it, so a new engine is one branch here plus
its session class. torch is imported only when a torch backend is asked for: an ONNX run starts
without it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from posestream.errors import InputError, ModelFileError
from posestream.runtime.base import ModelInfo, PoseBackend
from posestream.runtime.precision import resolve_precision

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from posestream.runtime.quantize import CalibrationFactory

__all__ = ["open_pose_backend", "resolve_engine", "TORCH_SPEC_PREFIX", "is_torch_module"]

logger = logging.getLogger(__name__)

TORCH_SPEC_PREFIX = "torch:"  # "torch:vitpose-b" = that architecture with random weights, in PyTorch


def is_torch_module(obj: object) -> bool:
    """True for an ``nn.Module``, without importing torch (a module can only exist once it is)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def open_pose_backend(
    model: str | Path | nn.Module | None = None,
    *,
    variant: str | None = None,
    weights: str | Path | None = None,
    decoder: str = "classic",
    info: ModelInfo | None = None,
    engine: str = "auto",
    providers: Sequence[str] = ("cpu",),
    device: str = "cpu",
    precision: str = "auto",
    threads: int = 2,
    calibration: CalibrationFactory | None = None,
    compile: bool | None = None,
    cuda_graphs: bool | None = None,
) -> PoseBackend:
    """The backend for a model file, a spec, a module, or a variant with weights.

    model:
      - ``*.onnx``: run by ``engine`` ('openvino'; 'onnxruntime' with ``providers`` 'cpu' / 'cuda'
        / 'tensorrt'; 'auto' = OpenVINO on the CPU when installed, else onnxruntime) with
        ``threads`` intra-op threads, at ``precision`` ('auto' = ``default_precision``; 'int8'
        quantises an fp32 file once, calibrated on what ``calibration`` gives).
      - ``*.engine`` / ``*.plan``: serialized TensorRT engines are not run directly: ModelFileError
        saying what to do instead.
      - ``"torch:<variant>"`` (``"torch:vitpose-b"``, ``"torch:b"``): that architecture with
        random weights in PyTorch.
      - an ``nn.Module``: run as is in PyTorch (``info`` describes it; default COCO-17 ViTPose).
      - None with ``variant``: ``build_vitpose(variant, decoder)`` with ``weights`` (a path, a
        known name such as vitpose-b-coco, or 'none' / None for random) in PyTorch.
    device / precision: for PyTorch, the torch device and fp32 | fp16 | bf16 | auto.

    The backend's ``precision`` and ``precision_reason`` say what it runs at and why.
    compile, cuda_graphs: the PyTorch fast path (None = on for CUDA devices; ``TorchPoseBackend``).
    """
    fast = {"compile": compile, "cuda_graphs": cuda_graphs}
    if model is None:
        if not variant:
            raise InputError("pose model: give an ONNX file, 'torch:<variant>', or a variant with weights")
        module, info = _build_vitpose(variant, weights, decoder, info)
        return _torch_backend(module, device, precision, info, **fast)
    if is_torch_module(model):
        return _torch_backend(model, device, precision, info, **fast)

    spec = str(model)
    if spec.startswith(TORCH_SPEC_PREFIX):
        name = spec[len(TORCH_SPEC_PREFIX) :].strip().lower().removeprefix("vitpose-")  # vitpose-b -> b
        module, info = _build_vitpose(name, None, decoder, info, spec=spec)
        return _torch_backend(module, device, precision, info, **fast)

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from posestream.runtime.onnx import OnnxPoseBackend
        from posestream.runtime.sessions import open_session

        engine = resolve_engine(engine, providers)
        chosen, reason = resolve_precision(precision, engine, on_gpu=engine == "onnxruntime" and _gpu(providers))
        session = open_session(
            path, engine=engine, threads=threads, providers=providers, precision=chosen, what="pose model",
            calibration=calibration,
        )  # fmt: skip
        backend = OnnxPoseBackend(session)
        backend.precision_reason = reason
        return backend
    if suffix in (".engine", ".plan"):
        if importlib.util.find_spec("tensorrt") is None:
            raise ModelFileError(f"{path}: TensorRT engines need the 'tensorrt' package (not installed)")
        from posestream.runtime.engine_cache import detect_engine_key, engine_stale_reason

        stale = engine_stale_reason(path, detect_engine_key())
        raise ModelFileError(
            f"{path}: serialized TensorRT engines are not run directly; pass the .onnx file with "
            "providers=('tensorrt',) (ONNX Runtime builds and caches the engine per GPU and TensorRT version)"
            + (f"; note: {stale}" if stale else "")
        )
    raise ModelFileError(
        f"{path}: unsupported model file; expected .onnx "
        f"(or '{TORCH_SPEC_PREFIX}<variant>' for random PyTorch weights)"
    )


def resolve_engine(engine: str, providers: Sequence[str] = ("cpu",)) -> str:
    """'auto' -> 'onnxruntime' when GPU providers are asked for or OpenVINO is not installed, else
    'openvino' (the runtime made for CPU inference); other names pass through (checked later)."""
    if engine != "auto":
        return engine
    if _gpu(providers) or importlib.util.find_spec("openvino") is None:
        return "onnxruntime"
    return "openvino"


def _gpu(providers: Sequence[str]) -> bool:
    from posestream.runtime.sessions import GPU_PROVIDERS, resolve_providers

    return any(p in GPU_PROVIDERS for p in resolve_providers(providers))


def _build_vitpose(
    variant: str, weights: str | Path | None, decoder: str, info: ModelInfo | None, spec: str | None = None
):
    """(ViTPose module with its weights, ModelInfo) for a variant name."""
    from posestream.models.checkpoint import load_weights
    from posestream.models.vitpose import build_vitpose, canonical_variant
    from posestream.models.weights import resolve_weights

    try:
        variant = canonical_variant(variant)
        module = build_vitpose(variant, decoder=decoder)
    except (KeyError, ValueError) as exc:
        raise InputError(f"model: {spec or variant!r} names no known ViTPose variant ({exc})") from exc
    path = resolve_weights(str(weights) if weights is not None else "none", variant)
    if path is not None:
        load_weights(module, path)
    elif spec is not None:
        logger.warning("model %s: random weights, the keypoints will be meaningless", spec)
    base = info or ModelInfo()
    return module, base.with_(variant=variant, decoder=decoder, random_weights=path is None)


def _torch_backend(module, device: str, precision: str, info: ModelInfo | None, **fast) -> PoseBackend:
    from posestream.runtime.torch import TorchPoseBackend

    chosen, reason = resolve_precision(precision, "torch", on_gpu=not str(device).startswith("cpu"))
    backend = TorchPoseBackend(module, device=device, dtype=chosen, info=info, **fast)
    backend.precision, backend.precision_reason = chosen, reason
    return backend
