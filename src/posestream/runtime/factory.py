"""Open a pose backend from a file path or a spec string."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from posestream.errors import InputError, ModelFileError
from posestream.runtime.base import ModelInfo, PoseBackend

__all__ = ["open_pose_backend", "TORCH_SPEC_PREFIX"]

logger = logging.getLogger(__name__)

TORCH_SPEC_PREFIX = "torch:"  # "torch:vitpose-b" = that architecture with random weights, in PyTorch


def open_pose_backend(
    path_or_spec: str | Path | nn.Module,
    providers: Sequence[str] = ("cpu",),
    threads: int = 2,
    device: str = "cpu",
    dtype: str = "fp32",
) -> PoseBackend:
    """The backend for a model file or spec.

    - ``*.onnx``: ONNX Runtime with ``providers`` ('cpu', 'cuda', 'tensorrt') and ``threads``
      intra-op threads.
    - ``*.engine`` / ``*.plan``: serialized TensorRT engines are not run directly: ModelFileError
      saying what to do instead.
    - ``"torch:<variant>"`` (``"torch:vitpose-b"``, ``"torch:b"``, ``"torch:base"``):
      ``build_vitpose(variant)`` with random weights in PyTorch on ``device`` / ``dtype``
      (``random_weights`` is True).
    - an ``nn.Module``: run as is in PyTorch on ``device`` / ``dtype``.
    """
    if isinstance(path_or_spec, nn.Module):
        from posestream.runtime.torch import TorchPoseBackend

        return TorchPoseBackend(path_or_spec, device=device, dtype=dtype)

    spec = str(path_or_spec)
    if spec.startswith(TORCH_SPEC_PREFIX):
        from posestream.models.vitpose import build_vitpose
        from posestream.runtime.torch import TorchPoseBackend

        variant = spec[len(TORCH_SPEC_PREFIX) :].strip().lower().removeprefix("vitpose-")  # vitpose-b -> b
        try:
            model = build_vitpose(variant)
        except (KeyError, ValueError) as exc:
            raise InputError(f"model: {spec!r} names no known ViTPose variant ({exc})") from exc
        logger.warning("model %s: random weights, the keypoints will be meaningless", spec)
        info = ModelInfo(variant=variant, random_weights=True)
        return TorchPoseBackend(model, device=device, dtype=dtype, info=info)

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from posestream.runtime.onnx import OrtPoseBackend

        return OrtPoseBackend(path, providers=providers, intra_op_threads=threads)
    if suffix in (".engine", ".plan"):
        if importlib.util.find_spec("tensorrt") is None:
            raise ModelFileError(f"{path}: TensorRT engines need the 'tensorrt' package (not installed)")
        raise ModelFileError(
            f"{path}: serialized TensorRT engines are not run directly; pass the .onnx file with "
            "providers=('tensorrt',) (ONNX Runtime builds and caches the engine)"
        )
    raise ModelFileError(
        f"{path}: unsupported model file; expected .onnx "
        f"(or '{TORCH_SPEC_PREFIX}<variant>' for random PyTorch weights)"
    )
