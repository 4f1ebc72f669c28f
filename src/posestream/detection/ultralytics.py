"""Ultralytics YOLOv8 / YOLO11 output decoding (``format="onnx"`` export, no NMS in the graph).

Input ``[1, 3, H, W]`` RGB 0-1, letterboxed *centred* with pad 114. Output ``[1, 4 + C, A]``:
``cx, cy, w, h`` in input pixels, then C class scores (no objectness). Person score = p(person).
"""

from __future__ import annotations

import numpy as np

from posestream.detection.base import PERSON
from posestream.detection.letterbox import Letterbox, letterbox

__all__ = ["UltralyticsDecoder"]


class UltralyticsDecoder:
    def __init__(self, input_size_hw: tuple[int, int]) -> None:
        self.input_size_hw = input_size_hw

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> (1, 3, h, w) float32 RGB 0-1, centred letterbox."""
        canvas, box = letterbox(image_bgr, self.input_size_hw, centred=True)
        blob = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        blob *= np.float32(1 / 255)
        return blob, box

    def candidates(self, output: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(1, 4 + C, A) -> person xyxy (M, 4) float32 in input pixels and score (M,), above threshold."""
        rows = output[0].T  # (A, 4 + C)
        score = rows[:, 4 + PERSON]
        keep = np.flatnonzero(score > score_threshold)
        cxcy, wh = rows[keep, 0:2], rows[keep, 2:4]
        xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
        return xyxy.astype(np.float32, copy=False), score[keep].astype(np.float32, copy=False)
