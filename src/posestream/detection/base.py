"""What every person detector is, and the fallback when none is configured."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from posestream.types import Detections

__all__ = ["PersonDetector", "FullFrameDetector", "check_image", "PERSON"]

PERSON = 0  # class index of "person" in COCO order (YOLOX and Ultralytics alike)


@runtime_checkable
class PersonDetector(Protocol):
    """Finds people in one picture."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """image_bgr: (H, W, 3) uint8 -> boxes xyxy (N, 4) float32 in frame pixels, score (N,) float32."""
        ...


def check_image(image_bgr: np.ndarray) -> None:
    """ValueError unless ``image_bgr`` is an (H, W, 3) uint8 picture."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(
            f"detect: expected an (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}"
        )


class FullFrameDetector:
    """The fallback when no detector is configured: one box covering the whole frame, score 1.0.

    Right for a single person filling a webcam picture; wrong for anything else (the pose model
    then sees the whole frame squeezed into 256x192, and finds at most one person).
    """

    name = "full_frame"
    threads = 0  # uses no inference threads

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """image_bgr: (H, W, 3) uint8 -> one box ``[0, 0, W, H]`` with score 1.0."""
        check_image(image_bgr)
        h, w = image_bgr.shape[:2]
        return Detections(np.array([[0.0, 0.0, w, h]], np.float32), np.ones((1,), np.float32))
