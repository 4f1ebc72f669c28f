"""YOLOX output decoding: the raw export (grid offsets, log sizes) and the decoded one.

Input ``[1, 3, H, W]`` BGR 0-255, letterboxed to the top-left with pad 114, no mean/std.
Output ``[1, A, 5 + C]``: box, objectness, C class scores (sigmoids already applied).

- *raw*: per grid cell ``dx, dy`` offsets in cell units and ``log w, log h``; box centre
  ``(d + grid) * stride``, size ``exp(log_wh) * stride``.
- *decoded*: the same maths is in the graph; the first four columns are ``cx, cy, w, h`` in
  input pixels.

Person score = objectness * p(person).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posestream.detection.base import PERSON
from posestream.detection.formats import STRIDES
from posestream.detection.letterbox import Letterbox, letterbox

__all__ = ["YoloxRawDecoder", "YoloxDecodedDecoder", "yolox_grid"]


def yolox_grid(size_hw: tuple[int, int], strides: Sequence[int] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell coordinates and strides in the network's anchor order.

    Returns grid_xy (A, 2) float32 (column, row of each cell) and stride (A, 1) float32; heads in
    ``strides`` order, cells row-major inside each head (the order of YOLOX's flatten + concat).
    """
    h, w = size_hw
    grids, stride_cols = [], []
    for s in strides:
        rows, cols = h // s, w // s
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([xx, yy], axis=-1).reshape(-1, 2))
        stride_cols.append(np.full((rows * cols, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(stride_cols).astype(np.float32)


class YoloxDecodedDecoder:
    """YOLOX with the decode in the graph: columns are already ``cx, cy, w, h`` in input pixels."""

    def __init__(self, input_size_hw: tuple[int, int]) -> None:
        self.input_size_hw = input_size_hw

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> (1, 3, h, w) float32 BGR 0-255, top-left letterbox."""
        canvas, box = letterbox(image_bgr, self.input_size_hw, centred=False)
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), box

    def candidates(self, output: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(1, A, 5 + C) -> person xyxy (M, 4) float32 in input pixels and score (M,), above threshold."""
        rows = output[0]
        score = rows[:, 4] * rows[:, 5 + PERSON]  # objectness * p(person)
        keep = np.flatnonzero(score > score_threshold)
        cxcy, wh = self._centre_size(rows[keep], keep)
        xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
        return xyxy.astype(np.float32, copy=False), score[keep].astype(np.float32, copy=False)

    def _centre_size(self, rows: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows[:, 0:2], rows[:, 2:4]


class YoloxRawDecoder(YoloxDecodedDecoder):
    """YOLOX without the in-graph decode (the official ONNX files): grid offsets and log sizes."""

    def __init__(self, input_size_hw: tuple[int, int]) -> None:
        super().__init__(input_size_hw)
        self._grid, self._stride = yolox_grid(input_size_hw)  # (A, 2), (A, 1)

    def _centre_size(self, rows: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        stride = self._stride[keep]  # (M, 1)
        return (rows[:, 0:2] + self._grid[keep]) * stride, np.exp(rows[:, 2:4]) * stride
