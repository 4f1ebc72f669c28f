"""Top-down pose estimation with every per-crop step on the model's torch device.

``TopDownEstimator`` warps crops with OpenCV on the CPU, copies them to the model, copies the
heatmaps back and decodes them with numpy. On a GPU that moves ~0.6 MB of crops up and ~0.2 MB of
heatmaps down per person, all on one thread. This estimator instead:

1. uploads each frame once (``upload``: pinned host memory and a dedicated copy stream on CUDA,
   so the copy overlaps whatever the GPU is doing; the frame is held on the device until used);
2. warps every person of every frame of a batch with one sampling call
   (``posestream.geometry.torch_warp``, the same UDP transform as the OpenCV path);
3. normalises on the device, in the model's dtype;
4. runs the model (``backend.forward``: compiled, CUDA graphs per batch bucket);
5. decodes on the device (``posestream.geometry.torch_heatmaps``: argmax + DARK + the same 2-px
   guard + inverse UDP) and copies back only keypoints and scores, (N, K, 3) floats.

The same code runs on the CPU (no streams, no pinned memory), which is how it is tested against
``TopDownEstimator``. ``estimate_frames`` takes several frames at once: the cross-frame batching
of the pose stage calls it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from posestream.geometry.boxes import xyxy_to_center_scale
from posestream.geometry.torch_heatmaps import decode_heatmaps_torch
from posestream.geometry.torch_warp import normalise_crops, stack_frames, warp_crops_torch

__all__ = ["DeviceTopDownEstimator", "DeviceFrame"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceFrame:
    """A frame on the model's device: ``image`` (H, W, 3) uint8 BGR; ``ready`` is the CUDA event
    its upload recorded on the copy stream (None on the CPU)."""

    image: torch.Tensor
    ready: torch.cuda.Event | None = None


class DeviceTopDownEstimator:
    """Keypoints for the people of one or more frames, computed on ``backend.device``.

    backend: a torch backend with ``device``, ``dtype``, ``forward(tensor) -> tensor`` and the
    ``PoseBackend`` model facts (``TorchPoseBackend``). padding: box enlargement (1.25 in ViTPose).
    max_chunk: the most crops one model call gets (larger batches run in chunks; bounds memory).

    ``model_calls`` counts model calls; ``last_timings['total']`` is the wall time of the last
    estimate, uploads excluded (on CUDA the work is asynchronous until the keypoints come back, so
    finer splits would measure only how long it took to queue the kernels).
    """

    def __init__(self, backend, padding: float = 1.25, max_chunk: int = 256) -> None:
        if not hasattr(backend, "forward") or not hasattr(backend, "device"):
            raise TypeError(f"{type(backend).__name__}: the device estimator needs a torch backend")
        if max_chunk < 1:
            raise ValueError(f"max_chunk: expected a positive count, got {max_chunk}")
        self.backend = backend
        self.device: torch.device = backend.device
        self.padding = float(padding)
        self.max_chunk = int(max_chunk)
        self.model_calls = 0
        self.last_timings: dict[str, float] = {"total": 0.0}
        self._copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    @property
    def num_keypoints(self) -> int:
        return self.backend.num_keypoints

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.backend.keypoint_names

    def warm_up(self, sizes: Sequence[int] | None = None) -> float:
        """Compile / capture the model for these batch sizes before the first frame; seconds."""
        return float(self.backend.warm_up(tuple(sizes) if sizes is not None else None))

    # ------------------------------------------------------------------------------- upload
    def upload(self, image_bgr: np.ndarray | DeviceFrame) -> DeviceFrame:
        """Start moving one (H, W, 3) uint8 frame to the device; returns at once on CUDA."""
        if isinstance(image_bgr, DeviceFrame):
            return image_bgr
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"image_bgr: expected (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
        host = torch.from_numpy(np.ascontiguousarray(image_bgr))
        if self._copy_stream is None:
            return DeviceFrame(host.to(self.device))  # the CPU: no copy at all
        pinned = host.pin_memory()  # page-locked, so the copy below is a true asynchronous DMA
        with torch.cuda.stream(self._copy_stream):
            on_device = pinned.to(self.device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(self._copy_stream)
        return DeviceFrame(on_device, ready)

    # ------------------------------------------------------------------------------- estimate
    def estimate(
        self, image_bgr: np.ndarray | DeviceFrame, xyxy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) float32 frame pixels and scores (N, K) float32 of one frame's boxes."""
        return self.estimate_frames([image_bgr], [xyxy])[0]

    def estimate_frames(
        self, frames: Sequence[np.ndarray | DeviceFrame], boxes: Sequence[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every person of several frames in as few model calls as ``max_chunk`` allows.

        frames: F frames ((H, W, 3) uint8 arrays or ``upload`` results, one size); boxes: F arrays
        (N_f, 4) xyxy. Returns F pairs ``(keypoints (N_f, K, 2), scores (N_f, K))``, in order.
        """
        if len(frames) != len(boxes):
            raise ValueError(f"{len(frames)} frames but {len(boxes)} box arrays")
        t0 = time.perf_counter()
        k = self.num_keypoints
        boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            self.last_timings = {"total": 0.0}
            return [(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)) for _ in boxes]
        in_h, in_w = self.backend.input_size_hw
        # Only frames with people are stacked (and wait for their upload).
        used = [f for f, n in enumerate(counts) if n > 0]
        on_device = [self.upload(frames[f]) for f in used]
        frame_index = np.repeat(np.arange(len(used)), [counts[f] for f in used])
        all_boxes = np.concatenate(boxes)
        center, scale = xyxy_to_center_scale(all_boxes, aspect_wh=in_w / in_h, padding=self.padding)

        with torch.inference_mode():
            if self._copy_stream is not None:
                compute = torch.cuda.current_stream(self.device)
                for frame in on_device:
                    compute.wait_event(frame.ready)
                    frame.image.record_stream(compute)  # allocated on the copy stream, used here
            volume = stack_frames([frame.image for frame in on_device])  # (1, 3, F, H, W) float32
            keypoints, scores = [], []
            for start in range(0, len(frame_index), self.max_chunk):
                part = slice(start, start + self.max_chunk)
                crops = warp_crops_torch(volume, frame_index[part], center[part], scale[part], (in_w, in_h))
                batch = normalise_crops(crops, self.backend.mean, self.backend.std, self.backend.color_order,
                                        dtype=self.backend.dtype)  # fmt: skip
                heatmaps = self.backend.forward(batch)  # (n, K, h, w), on the device
                self.model_calls += 1
                kp, sc = decode_heatmaps_torch(heatmaps, center[part], scale[part], (in_w, in_h))
                keypoints.append(kp)
                scores.append(sc)
            both = torch.cat([torch.cat(keypoints), torch.cat(scores)[..., None]], dim=-1).cpu().numpy()
        self.last_timings = {"total": time.perf_counter() - t0}
        out, start = [], 0
        for n in counts:
            out.append((both[start : start + n, :, :2].copy(), both[start : start + n, :, 2].copy()))
            start += n
        return out
