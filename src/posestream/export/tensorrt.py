"""ONNX -> serialized TensorRT engine, where the ``tensorrt`` Python package is installed.

The engine keeps the ONNX file's dynamic batch axis through one optimisation profile
(batch 1 .. ``max_batch``, tuned for ``opt_batch``). An engine only runs on the GPU model and
TensorRT version that built it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from posestream.errors import ExportError, ModelFileError

__all__ = ["build_engine", "tensorrt_available"]

log = logging.getLogger(__name__)


def tensorrt_available() -> bool:
    """True when ``import tensorrt`` works."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fp16: bool,
    *,
    max_batch: int = 32,
    opt_batch: int = 8,
    workspace_bytes: int = 2 << 30,
) -> Path:
    """Build a TensorRT engine from ``onnx_path`` (input ``input`` (N, 3, H, W)) into ``out_path``.

    fp16: allow FP16 kernels (the I/O stays float32). Raises ExportError when tensorrt is not
    installed or the build fails; ModelFileError when ``onnx_path`` does not exist.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ExportError(
            "tensorrt is not installed: install NVIDIA TensorRT's Python package (pip install tensorrt) "
            "on a machine with an NVIDIA GPU, or export with --format onnx"
        ) from exc
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise ModelFileError(f"ONNX file {onnx_path}: does not exist")
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"opt_batch {opt_batch} must lie in 1..max_batch ({max_batch})")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10 needs it
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        if not builder.platform_has_fast_fp16:
            log.warning("this GPU has no fast FP16; building with FP16 allowed anyway")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        _, *chw = tuple(tensor.shape)
        if any(d < 0 for d in chw):
            raise ExportError(
                f"{onnx_path}: input {tensor.name} has dynamic non-batch dims {tuple(tensor.shape)}"
            )
        profile.set_shape(tensor.name, (1, *chw), (opt_batch, *chw), (max_batch, *chw))
    config.add_optimization_profile(profile)

    log.info("building TensorRT engine from %s (fp16=%s), this takes minutes", onnx_path, fp16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(bytes(serialized))
    return out_path
