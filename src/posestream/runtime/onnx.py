"""Pose backend for an ONNX file, on any engine ``posestream.runtime.sessions`` opens.

Reads what it needs from the file: ``posestream.*`` metadata when the exporter wrote it, else the
graph's own shapes (the official easy_ViTPose ONNX files carry no metadata, name their input
differently and fix the batch at 1). A fixed batch is honoured by running the crops in chunks of
that size. Build it with ``posestream.runtime.factory.open_pose_backend``.
"""

from __future__ import annotations

import logging

import numpy as np

from posestream.errors import ModelFileError
from posestream.keypoints import KeypointSet, keypoint_set_for
from posestream.runtime.base import ModelInfo, ModelInfoAttributes
from posestream.runtime.sessions import Session

__all__ = ["OnnxPoseBackend"]

logger = logging.getLogger(__name__)


class OnnxPoseBackend(ModelInfoAttributes):
    """A pose model in an ONNX file, run by an opened ``Session``. See ``PoseBackend`` for the attributes.

    session: from ``open_session`` (ONNX Runtime or OpenVINO); its name, providers and
    ``on_gpu`` are this backend's.
    keypoint_set: the set the caller expects (e.g. ``--keypoints ap10k`` for a file without
    metadata); ModelFileError naming both sets when the file's metadata or output count disagrees.
    None: what the file says (metadata, else the output channel count).
    """

    def __init__(self, session: Session, keypoint_set: KeypointSet | None = None) -> None:
        self.session = session
        self.path = session.path
        self.name = session.name
        self.on_gpu = bool(session.on_gpu)
        self.providers: tuple[str, ...] = tuple(getattr(session, "providers", ()) or (session.name,))

        inputs, outputs = session.inputs, session.outputs
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input (N, 3, H, W), found {len(inputs)}")
        by_name = {output.name: output for output in outputs}
        output = by_name.get("heatmaps", outputs[0])
        self.input_name: str = inputs[0].name
        self.output_name: str = output.name
        if inputs[0].dtype is None:
            where = f"{self.path}: input '{self.input_name}'"
            raise ModelFileError(f"{where} is not a floating-point tensor (expected float, float16 or double)")
        self._input_dtype = inputs[0].dtype

        metadata = dict(session.metadata)
        info, given = ModelInfo.from_metadata(metadata, str(self.path))
        self.metadata: dict[str, str] = metadata
        self.info = self._reconcile(info, given, list(inputs[0].shape), list(output.shape))
        if keypoint_set is not None:
            self.info = self._expect_set(self.info, "keypoint_set" in given, keypoint_set)
        # What it runs at (the factory adds why): a file exported as fp16 / int8 keeps that precision.
        exported = self.info.precision if self.info.precision in ("fp16", "int8") else None
        self.precision: str = exported if session.precision == "fp32" and exported else session.precision
        self.precision_reason = ""

        batch = inputs[0].shape[0] if len(inputs[0].shape) == 4 else None
        self.max_batch: int | None = batch
        if batch is not None:
            logger.info(
                "%s: the model has a fixed batch of %d, so crops run %d at a time "
                "(export with a dynamic batch to run all people of a frame in one pass)",
                self.path.name, batch, batch,
            )  # fmt: skip

    def _reconcile(self, info: ModelInfo, given: set[str], in_shape: list, out_shape: list) -> ModelInfo:
        """Check metadata against the graph's static shapes; fill what metadata left out."""
        if len(in_shape) != 4 or in_shape[1] not in (None, 3):
            where = f"{self.path}: input '{self.input_name}'"
            raise ModelFileError(f"{where} has shape {in_shape}, expected (N, 3, H, W)")
        if len(out_shape) != 4:
            where = f"{self.path}: output '{self.output_name}'"
            raise ModelFileError(f"{where} has shape {out_shape}, expected (N, K, h, w)")

        graph_in = (in_shape[2], in_shape[3])
        if None not in graph_in:
            if "input_size_hw" in given and info.input_size_hw != graph_in:
                raise ModelFileError(
                    f"{self.path}: metadata input_size_hw {info.input_size_hw} disagrees with the graph "
                    f"{graph_in}"
                )
            info = info.with_(input_size_hw=graph_in)

        graph_out = list(out_shape[1:])  # K, h, w
        if None in graph_out and not {"keypoint_set", "heatmap_size_hw"} <= given:
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
            if "keypoint_set" in given:
                raise ModelFileError(
                    f"{self.path}: metadata names {info.num_keypoints} keypoints, the graph outputs "
                    f"{num_keypoints}"
                )
            info = info.with_(keypoint_set=keypoint_set_for(num_keypoints))
        return info

    def _expect_set(self, info: ModelInfo, from_metadata: bool, expected: KeypointSet) -> ModelInfo:
        """``info`` with the caller's set, or ModelFileError when the file speaks another one."""
        have = info.keypoint_set
        if have.num_keypoints != expected.num_keypoints or (from_metadata and have.keypoints != expected.keypoints):
            origin = "its metadata" if from_metadata else "its output channels"
            raise ModelFileError(
                f"{self.path}: the model is for keypoint set {have.describe()} (from {origin}), "
                f"not {expected.describe()}"
            )
        return info.with_(keypoint_set=expected)

    def _probe_output_shape(self, input_size_hw: tuple[int, int]) -> list[int]:
        """Run one zero crop to learn (K, h, w) when neither the graph nor the metadata says."""
        batch = self.session.inputs[0].shape[0] or 1
        probe = np.zeros((batch, 3, *input_size_hw), dtype=self._input_dtype)
        try:
            (heatmaps,) = self.session.run({self.input_name: probe}, [self.output_name])
        except self.session.errors as exc:
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
            (heatmaps,) = self.session.run({self.input_name: feed}, [self.output_name])
            return heatmaps.astype(np.float32, copy=False)
        # Fixed batch: run chunks of exactly max_batch, zero-padding the last one.
        size = self.max_batch
        parts = []
        for start in range(0, n, size):
            chunk = feed[start : start + size]
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            (heatmaps,) = self.session.run({self.input_name: chunk}, [self.output_name])
            parts.append(heatmaps)
        return np.concatenate(parts)[:n].astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"OnnxPoseBackend({str(self.path)!r}, name={self.name!r}, info={self.info})"
