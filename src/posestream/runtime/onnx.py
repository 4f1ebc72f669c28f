"""ONNX Runtime pose backend.

Reads what it needs from the file: ``posestream.*`` metadata when the exporter wrote it, else the
graph's own shapes (the official easy_ViTPose ONNX files carry no metadata, name their input
differently and fix the batch at 1). A fixed batch is honoured by running the crops in chunks of
that size. ONNX Runtime silently falls back to CPU when a requested execution provider cannot be
loaded, so the granted providers are checked and every missing one is logged as a WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from posestream.errors import InputError, ModelFileError
from posestream.runtime.base import ModelInfo, ModelInfoAttributes

__all__ = ["OrtPoseBackend", "PROVIDERS", "resolve_providers"]

logger = logging.getLogger(__name__)

# Short names accepted on the command line / in configs -> ONNX Runtime execution providers.
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
# What onnxruntime raises for a file it cannot load (all derive from Exception directly).
ORT_LOAD_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NoSuchFile,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)
_NUMPY_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def resolve_providers(providers: Sequence[str]) -> list[str]:
    """Short names ('cpu', 'cuda', 'tensorrt') or full EP names -> EP names, CPU appended as fallback."""
    if isinstance(providers, str):
        providers = [providers]
    resolved: list[str] = []
    for provider in providers:
        name = PROVIDERS.get(provider.lower(), provider)
        if name not in PROVIDERS.values():
            choices = ", ".join(PROVIDERS)
            raise InputError(f"providers: unknown execution provider {provider!r}, expected one of {choices}")
        if name not in resolved:
            resolved.append(name)
    if PROVIDERS["cpu"] not in resolved:
        resolved.append(PROVIDERS["cpu"])
    return resolved


def _static_dim(dim: object) -> int | None:
    """A graph dimension as an int, or None when it is symbolic ('batch') or unknown."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OrtPoseBackend(ModelInfoAttributes):
    """A pose model in an ONNX file, run by ONNX Runtime. See ``PoseBackend`` for the attributes.

    path: the .onnx file. providers: short names in order of preference ('cpu', 'cuda',
    'tensorrt'); CPU is always the last fallback. intra_op_threads: threads for one inference.
    """

    def __init__(
        self, path: str | Path, providers: Sequence[str] = ("cpu",), intra_op_threads: int = 2
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: ONNX model file not found")
        requested = resolve_providers(providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=requested)
        except ORT_LOAD_ERRORS as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path}: not a loadable ONNX model ({reason})") from exc

        granted = self.session.get_providers()
        for provider in requested:
            if provider not in granted:
                logger.warning(
                    "%s: execution provider %s was requested but not granted by onnxruntime %s "
                    "(available: %s); running on %s",
                    self.path.name,
                    provider,
                    ort.__version__,
                    ", ".join(ort.get_available_providers()),
                    granted[0],
                )
        self.providers: tuple[str, ...] = tuple(granted)
        self.name = f"onnxruntime[{granted[0]}]"

        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input (N, 3, H, W), found {len(inputs)}")
        by_name = {output.name: output for output in outputs}
        output = by_name.get("heatmaps", outputs[0])
        self.input_name: str = inputs[0].name
        self.output_name: str = output.name
        if inputs[0].type not in _NUMPY_DTYPES:
            where = f"{self.path}: input '{self.input_name}'"
            raise ModelFileError(f"{where} has type {inputs[0].type}, expected float, float16 or double")
        self._input_dtype = _NUMPY_DTYPES[inputs[0].type]

        metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        info, given = ModelInfo.from_metadata(metadata, str(self.path))
        self.metadata: dict[str, str] = metadata
        self.info = self._reconcile(info, given, list(inputs[0].shape), list(output.shape))

        batch = _static_dim(inputs[0].shape[0]) if len(inputs[0].shape) == 4 else None
        self.max_batch: int | None = batch
        if batch is not None:
            logger.info(
                "%s: the model has a fixed batch of %d, so crops run %d at a time "
                "(export with a dynamic batch to run all people of a frame in one pass)",
                self.path.name, batch, batch,
            )  # fmt: skip

    def _reconcile(self, info: ModelInfo, given: set[str], in_shape: list, out_shape: list) -> ModelInfo:
        """Check metadata against the graph's static shapes; fill what metadata left out."""
        if len(in_shape) != 4 or _static_dim(in_shape[1]) not in (None, 3):
            where = f"{self.path}: input '{self.input_name}'"
            raise ModelFileError(f"{where} has shape {in_shape}, expected (N, 3, H, W)")
        if len(out_shape) != 4:
            where = f"{self.path}: output '{self.output_name}'"
            raise ModelFileError(f"{where} has shape {out_shape}, expected (N, K, h, w)")

        graph_in = (_static_dim(in_shape[2]), _static_dim(in_shape[3]))
        if None not in graph_in:
            if "input_size_hw" in given and info.input_size_hw != graph_in:
                raise ModelFileError(
                    f"{self.path}: metadata input_size_hw {info.input_size_hw} disagrees with the graph "
                    f"{graph_in}"
                )
            info = info.with_(input_size_hw=graph_in)

        graph_out = [_static_dim(dim) for dim in out_shape[1:]]  # K, h, w
        if None in graph_out and not {"keypoint_names", "heatmap_size_hw"} <= given:
            graph_out = self._probe_output_shape(info.input_size_hw)
            logger.info("%s: output shape not in the graph; probed (K, h, w) = %s", self.path.name, graph_out)
        num_keypoints, height, width = graph_out
        if height is not None and width is not None:
            if "heatmap_size_hw" in given and info.heatmap_size_hw != (height, width):
                raise ModelFileError(
                    f"{self.path}: metadata heatmap_size_hw {info.heatmap_size_hw} disagrees with the graph "
                    f"{(height, width)}"
                )
            info = info.with_(heatmap_size_hw=(height, width))
        if num_keypoints is not None and num_keypoints != info.num_keypoints:
            if "keypoint_names" in given:
                raise ModelFileError(
                    f"{self.path}: metadata names {info.num_keypoints} keypoints, the graph outputs "
                    f"{num_keypoints}"
                )
            info = info.with_(keypoint_names=tuple(f"keypoint_{i}" for i in range(num_keypoints)))
        return info

    def _probe_output_shape(self, input_size_hw: tuple[int, int]) -> list[int]:
        """Run one zero crop to learn (K, h, w) when neither the graph nor the metadata says."""
        batch = _static_dim(self.session.get_inputs()[0].shape[0]) or 1
        probe = np.zeros((batch, 3, *input_size_hw), dtype=self._input_dtype)
        try:
            (heatmaps,) = self.session.run([self.output_name], {self.input_name: probe})
        except ORT_LOAD_ERRORS as exc:
            raise ModelFileError(f"{self.path}: test run on a zero input failed ({exc})") from exc
        return [int(dim) for dim in heatmaps.shape[1:]]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, K, h, w) float32 heatmaps (fp16 models: cast in and out)."""
        height, width = self.input_size_hw
        if batch.ndim != 4 or tuple(batch.shape[1:]) != (3, height, width):
            raise ValueError(f"{self.name}: expected a batch (N, 3, {height}, {width}), got {batch.shape}")
        n = len(batch)
        if n == 0:
            return np.zeros((0, self.num_keypoints, *self.heatmap_size_hw), dtype=np.float32)
        feed = np.ascontiguousarray(batch, dtype=self._input_dtype)
        if self.max_batch is None:
            (heatmaps,) = self.session.run([self.output_name], {self.input_name: feed})
            return heatmaps.astype(np.float32, copy=False)
        # Fixed batch: run chunks of exactly max_batch, zero-padding the last one.
        size = self.max_batch
        parts = []
        for start in range(0, n, size):
            chunk = feed[start : start + size]
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            (heatmaps,) = self.session.run([self.output_name], {self.input_name: chunk})
            parts.append(heatmaps)
        return np.concatenate(parts)[:n].astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"OrtPoseBackend({str(self.path)!r}, name={self.name!r}, info={self.info})"
