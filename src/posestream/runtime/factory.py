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
from posestream.keypoints import KeypointSet
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
    keypoint_set: KeypointSet | None = None,
    expert: str | None = None,
    compile: bool | None = None,
    cuda_graphs: bool | None = None,
) -> PoseBackend:
    """The backend for a model file, a spec, a module, or a variant with weights.

    model:
      - ``*.onnx``: run by ``engine`` ('openvino'; 'onnxruntime' with ``providers`` 'cpu' / 'cuda'
        / 'tensorrt'; 'auto' = OpenVINO on the CPU when installed, else onnxruntime) with
        ``threads`` intra-op threads, at ``precision`` ('auto' = ``default_precision``; 'int8'
        quantises an fp32 file once, calibrated on what ``calibration`` gives). A known ONNX name
        (``vitpose-l-wholebody.onnx``, ``posestream.models.known_weights``) is taken from the cache
        (downloaded once) and brings its keypoint set.
      - ``*.engine`` / ``*.plan``: serialized TensorRT engines are not run directly: ModelFileError
        saying what to do instead.
      - ``"torch:<variant>"`` (``"torch:vitpose-b"``, ``"torch:b"``): that architecture with
        random weights in PyTorch.
      - an ``nn.Module``: run as is in PyTorch (``info`` describes it; default COCO-17 ViTPose).
      - None with ``variant`` and/or ``weights``: ``posestream.models.loading.load_vitpose``: a
        checkpoint path, a known name such as vitpose-b-wholebody, a Hub id or transformers folder,
        or 'none' / None for random weights (then ``variant`` and ``decoder`` say what to build), in
        PyTorch. ``expert``: the ViTPose+ expert to run (coco, aic, mpii, ap10k, apt36k, wholebody).
    device / precision: for PyTorch, the torch device and fp32 | fp16 | bf16 | auto.
    keypoint_set: the set the caller expects the model to predict; None = what the model says (ONNX
        metadata, else its output count). A model of another set is a ModelFileError naming both.

    The backend's ``precision`` and ``precision_reason`` say what it runs at and why.
    compile, cuda_graphs: the PyTorch fast path (None = on for CUDA devices; ``TorchPoseBackend``).
    """
    if keypoint_set is not None and info is not None and info.keypoint_set != keypoint_set:
        raise InputError(
            f"open_pose_backend: info says {info.keypoint_set.describe()}, keypoint_set {keypoint_set.describe()}"
        )
    fast = {"compile": compile, "cuda_graphs": cuda_graphs}
    if model is None:
        if not (variant or weights):
            raise InputError("pose model: give an ONNX file, 'torch:<variant>', or a variant and/or weights")
        module, info = _build_vitpose(variant, weights, decoder, info, keypoint_set=keypoint_set, expert=expert)
        return _expect(_torch_backend(module, device, precision, info, **fast), keypoint_set)
    if is_torch_module(model):
        if keypoint_set is not None:
            info = (info or ModelInfo()).with_(keypoint_set=keypoint_set)
        return _expect(_torch_backend(model, device, precision, info, **fast), keypoint_set)

    spec = str(model)
    if spec.startswith(TORCH_SPEC_PREFIX):
        name = spec[len(TORCH_SPEC_PREFIX) :].strip().lower().removeprefix("vitpose-")  # vitpose-b -> b
        module, info = _build_vitpose(name, None, decoder, info, spec=spec, keypoint_set=keypoint_set)
        return _expect(_torch_backend(module, device, precision, info, **fast), keypoint_set)

    spec, keypoint_set = _known_onnx(spec, keypoint_set)
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
        backend = OnnxPoseBackend(session, keypoint_set=keypoint_set)
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
    variant: str | None,
    weights: str | Path | None,
    decoder: str,
    info: ModelInfo | None,
    spec: str | None = None,
    keypoint_set: KeypointSet | None = None,
    expert: str | None = None,
):
    """(ViTPose module with its weights, ModelInfo), through ``posestream.models.loading.load_vitpose``.

    ``decoder`` applies to random weights; a weights file says its own.
    """
    from posestream.models.loading import load_vitpose

    text = "none" if weights is None else str(weights)
    random = text.strip().lower() in ("", "none", "random")
    try:
        loaded = load_vitpose(text, variant=variant, decoder=decoder if random else None,
                              keypoint_set=keypoint_set, expert=expert)  # fmt: skip
    except InputError as exc:
        if spec is not None and "--variant" in str(exc):
            raise InputError(f"model: {spec!r} names no known ViTPose variant ({exc})") from exc
        raise
    if random and spec is not None:
        logger.warning("model %s: random weights, the keypoints will be meaningless", spec)
    base = info or ModelInfo()
    return loaded.model, base.with_(variant=loaded.variant, decoder=loaded.decoder,
                                    random_weights=loaded.random_weights, keypoint_set=loaded.keypoint_set)  # fmt: skip


def _known_onnx(spec: str, expected: KeypointSet | None) -> tuple[str, KeypointSet | None]:
    """A known ONNX name -> its cached (downloaded once) file and, unless the caller names one, its set."""
    from posestream.models.known_weights import known_weights

    known = known_weights(spec)
    if known is None or known.kind != "onnx" or Path(spec).is_file():
        return spec, expected
    from posestream.keypoints import get_keypoint_set
    from posestream.models.weights import resolve_known

    held = get_keypoint_set(known.keypoint_set)
    if expected is not None and expected.keypoints != held.keypoints:
        raise ModelFileError(
            f"pose model {spec}: is a model of keypoint set {held.describe()}, not {expected.describe()}"
        )
    return str(resolve_known(known)), held


def _expect(backend: PoseBackend, keypoint_set: KeypointSet | None) -> PoseBackend:
    """``backend``, unless it predicts another set than the caller expects (ModelFileError naming both)."""
    if keypoint_set is not None and backend.keypoint_set != keypoint_set:
        raise ModelFileError(
            f"the pose model predicts {backend.keypoint_set.describe()}, not {keypoint_set.describe()}"
        )
    return backend


def _torch_backend(module, device: str, precision: str, info: ModelInfo | None, **fast) -> PoseBackend:
    from posestream.runtime.torch import TorchPoseBackend

    chosen, reason = resolve_precision(precision, "torch", on_gpu=not str(device).startswith("cpu"))
    backend = TorchPoseBackend(module, device=device, dtype=chosen, info=info, **fast)
    backend.precision, backend.precision_reason = chosen, reason
    return backend
