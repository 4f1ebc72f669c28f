"""Letterboxing: a frame resized into the detector's fixed input, and the way back to frame pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox", "letterbox", "PAD_VALUE"]

PAD_VALUE = 114  # letterbox fill of YOLOX and Ultralytics alike


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed in the network input: ``input = frame * ratio + pad_xy``."""

    ratio: float
    pad_xy: tuple[float, float]

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy in network-input pixels -> (N, 4) xyxy in frame pixels (not clipped)."""
        px, py = self.pad_xy
        return (xyxy - np.array([px, py, px, py], np.float32)) / np.float32(self.ratio)


def letterbox(image: np.ndarray, size_hw: tuple[int, int], *, centred: bool) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) keeping its aspect ratio into a ``size_hw`` canvas filled with 114.

    ``centred=False`` puts it in the top-left corner (YOLOX), ``True`` centres it (Ultralytics, which
    rounds the split padding with a 0.1 bias). Returns the (h, w, 3) canvas and the ``Letterbox``.
    """
    h, w = image.shape[:2]
    out_h, out_w = size_hw
    ratio = min(out_h / h, out_w / w)
    if centred:
        new_w, new_h = round(w * ratio), round(h * ratio)
        dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
        left, top = round(dw - 0.1), round(dh - 0.1)
    else:
        new_w, new_h = int(w * ratio), int(h * ratio)
        left = top = 0
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = image
    return canvas, Letterbox(ratio, (float(left), float(top)))
