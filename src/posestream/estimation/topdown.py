"""Top-down pose estimation of one frame: boxes in, keypoints out, one model call.

Steps of ``TopDownEstimator.estimate``:

1. boxes -> (center, scale) with the model's aspect ratio and 1.25 padding;
2. UDP-warp each person to the model input (H, W) and normalise, written straight into a
   zero-filled batch whose size is the next *bucket* (1, 2, 4, ...): engines that plan per input
   shape (ONNX Runtime, TensorRT) then see a handful of shapes instead of one per head count;
3. one backend call for all people of the frame (more only beyond the largest bucket or the
   backend's ``max_batch``);
4. decode the real rows' heatmaps (argmax + DARK + inverse UDP) to frame pixels.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence

import numpy as np

from posestream.geometry.affine import to_model_input, warp_crops
from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.geometry.heatmaps import decode_heatmaps
from posestream.runtime.base import PoseBackend

__all__ = ["TopDownEstimator"]

logger = logging.getLogger(__name__)


class TopDownEstimator:
    """Keypoints for the people of a frame, given their boxes.

    backend: the pose model (``PoseBackend``).
    batch_buckets: batch sizes the model is run with; N people are padded with zero crops up to
        the smallest bucket >= N (capped by ``backend.max_batch``). A larger N is run in chunks
        of the largest usable bucket. Trade-off: more buckets waste less compute on padding,
        fewer buckets mean fewer shapes for the engine to plan and cache. None = no padding
        (exactly N, chunked only by ``backend.max_batch``): the better choice on CPU, where
        ONNX Runtime and PyTorch pay nothing for a new shape and compute grows with the batch.
    padding: box enlargement before cropping (1.25 in ViTPose).

    ``model_calls`` counts backend calls since construction; ``last_timings`` holds the seconds
    spent in 'preprocess', 'model' and 'postprocess' by the last ``estimate``.
    """

    def __init__(
        self,
        backend: PoseBackend,
        batch_buckets: Sequence[int] | None = (1, 2, 4, 8, 16, 32, 64),
        padding: float = 1.25,
    ) -> None:
        buckets: list[int] | None = None
        if batch_buckets is not None:
            buckets = sorted({int(size) for size in batch_buckets})
            if not buckets or buckets[0] < 1:
                raise ValueError(f"batch_buckets: expected positive batch sizes, got {tuple(batch_buckets)}")
            if backend.max_batch is not None:
                buckets = [size for size in buckets if size < backend.max_batch] + [backend.max_batch]
        self.backend = backend
        self.batch_buckets: tuple[int, ...] | None = None if buckets is None else tuple(buckets)
        self.padding = float(padding)
        self.model_calls = 0
        self.last_timings: dict[str, float] = {"preprocess": 0.0, "model": 0.0, "postprocess": 0.0}

    @property
    def num_keypoints(self) -> int:
        return self.backend.num_keypoints

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.backend.keypoint_names

    @property
    def max_chunk(self) -> int | None:
        """The most crops one backend call gets (None = all of them)."""
        return self.backend.max_batch if self.batch_buckets is None else self.batch_buckets[-1]

    def bucket_for(self, n: int) -> int:
        """Padded batch size for a chunk of ``n`` crops (``n`` <= ``max_chunk``)."""
        if self.batch_buckets is None:
            return n
        return self.batch_buckets[bisect.bisect_left(self.batch_buckets, n)]

    def estimate(self, image_bgr: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of the people in ``xyxy``.

        image_bgr: (H, W, 3) uint8 frame. xyxy: (N, 4) person boxes in frame pixels.
        Returns ``keypoints`` (N, K, 2) float32 ``(x, y)`` frame pixels and ``scores`` (N, K)
        float32. N = 0 returns empty arrays without calling the model.
        """
        t0 = time.perf_counter()
        xyxy = np.asarray(xyxy, dtype=np.float64)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy: expected shape (N, 4), got {xyxy.shape}")
        n, k = len(xyxy), self.backend.num_keypoints
        if n == 0:
            self.last_timings = {"preprocess": 0.0, "model": 0.0, "postprocess": 0.0}
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)

        in_h, in_w = self.backend.input_size_hw
        center, scale = xyxy_to_center_scale(xyxy, aspect_wh=in_w / in_h, padding=self.padding)
        crops = warp_crops(image_bgr, center, scale, (in_w, in_h))  # (N, H, W, 3) uint8 BGR
        return self._run_crops(crops, center, scale, t0)

    def _run_crops(
        self, crops: np.ndarray, center: np.ndarray, scale: np.ndarray, t0: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 BGR crops -> padded batches -> model -> decoded keypoints, scores."""
        t0 = time.perf_counter() if t0 is None else t0
        n, k = len(crops), self.backend.num_keypoints
        in_h, in_w = self.backend.input_size_hw
        backend, chunk = self.backend, self.max_chunk or n
        batches = []
        for start in range(0, n, chunk):  # one chunk unless N > max_chunk
            part = crops[start : start + chunk]
            batch = np.zeros((self.bucket_for(len(part)), 3, in_h, in_w), dtype=np.float32)  # (B, 3, H, W)
            to_model_input(part, backend.mean, backend.std, backend.color_order, out=batch[: len(part)])
            batches.append((len(part), batch))
        t1 = time.perf_counter()

        outputs = []
        for real, batch in batches:
            heatmaps = backend(batch)  # (B, K, h, w)
            self.model_calls += 1
            assert heatmaps.shape[:2] == (len(batch), k), f"backend gave {heatmaps.shape} for {batch.shape}"
            outputs.append(heatmaps[:real])
        heatmaps = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)  # (N, K, h, w)
        t2 = time.perf_counter()

        keypoints, scores = decode_heatmaps(heatmaps, center, scale, (in_w, in_h))
        t3 = time.perf_counter()
        self.last_timings = {"preprocess": t1 - t0, "model": t2 - t1, "postprocess": t3 - t2}
        return keypoints, scores

    def warm_up(self, sizes: Sequence[int] | None = None) -> float:
        """Let a torch backend compile / capture for these batch sizes (default: this estimator's
        buckets) before the first frame; seconds (0 for backends with nothing to prepare)."""
        warm = getattr(self.backend, "warm_up", None)
        if warm is None:
            return 0.0
        return float(warm(tuple(sizes) if sizes is not None else self.batch_buckets))

    def upload(self, image_bgr: np.ndarray) -> np.ndarray:
        """Nothing to do: the frame stays in host memory (the device estimator moves it here)."""
        return image_bgr

    def estimate_frames(
        self, images_bgr: Sequence[np.ndarray], boxes: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every person of several frames through one batched call (chunked as ``estimate`` chunks).

        images_bgr: F frames (H, W, 3) uint8; boxes: F arrays (N_f, 4) xyxy. Returns F pairs
        ``(keypoints (N_f, K, 2), scores (N_f, K))`` in order. Crops are cut frame by frame (the
        frames may differ in size) and run together, so the model sees one batch.
        """
        if len(images_bgr) != len(boxes):
            raise ValueError(f"{len(images_bgr)} frames but {len(boxes)} box arrays")
        if len(images_bgr) == 1:
            return [self.estimate(images_bgr[0], boxes[0])]
        boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
        counts = [len(b) for b in boxes]
        k = self.backend.num_keypoints
        in_h, in_w = self.backend.input_size_hw
        centers, scales, crops = [], [], []
        for image, xyxy in zip(images_bgr, boxes):
            if len(xyxy):
                center, scale = xyxy_to_center_scale(xyxy, aspect_wh=in_w / in_h, padding=self.padding)
                centers.append(center)
                scales.append(scale)
                crops.append(warp_crops(image, center, scale, (in_w, in_h)))
        if not crops:
            return [(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)) for _ in boxes]
        center, scale = np.concatenate(centers), np.concatenate(scales)
        keypoints, scores = self._run_crops(np.concatenate(crops), center, scale)
        out, start = [], 0
        for n in counts:
            out.append((keypoints[start : start + n], scores[start : start + n]))
            start += n
        return out
