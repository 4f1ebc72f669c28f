"""Run a pose estimator over a keypoint dataset and write COCO keypoint results.

Predictions go through ``TopDownEstimator``, the live pipeline's pre/post-processing (UDP crop,
normalisation, DARK decode, inverse UDP), so the AP measured here is the AP of what the app shows.

Boxes: ``gt`` uses the ground-truth boxes of every non-crowd person with labelled keypoints, box
score 1 (mmpose ``use_gt_bbox=True``); ``detector`` runs the person detector on each image, box score
= detector score. No OKS NMS is applied to the poses (mmpose does it with threshold 0.9 on detector
boxes; the detector's box NMS already removes most duplicates, and a leftover duplicate can only
lower AP here).

Result score (mmpose 0.x ``TopDownCocoDataset`` / ViTPose rescoring): ``box score x mean of the
keypoint scores above 0.2`` (0 when none is above 0.2).

Flip test (``FlipTestBackend``): the mirrored crop goes through the model too; its heatmaps are
mirrored back (``[..., ::-1]``) with left/right channels swapped and averaged with the plain ones.
No one-pixel shift: under UDP, crop pixel ``x`` maps to ``W_in - 1 - x`` and heatmap column ``u`` to
``w - 1 - u``, and ``u = x (w - 1) / (W_in - 1)`` commutes with both, so mirroring the heatmap is exact
(the ViTPose configs set ``shift_heatmap=False`` for this reason; the shift belongs to the non-UDP
``x / 4`` convention).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from posestream.datasets.coco_keypoints import KeypointDataset, load_image
from posestream.errors import InputError

__all__ = ["FlipTestBackend", "KEYPOINT_SCORE_THRESHOLD", "rescore", "predict_dataset"]

log = logging.getLogger(__name__)

KEYPOINT_SCORE_THRESHOLD = 0.2  # mmpose / ViTPose ``vis_thr``


class FlipTestBackend:
    """Wraps a pose backend ``(N, 3, H, W) float32 -> (N, K, h, w)``; averages in the mirrored view.

    flip_index: (K,) permutation, the model's ``KeypointSet.flip_index``. Every other attribute (``mean``,
    ``std``, ``input_size_hw``, ``num_keypoints`` ...) is the wrapped backend's.
    """

    def __init__(self, backend, flip_index: np.ndarray) -> None:
        self.backend = backend
        self.flip_index = np.asarray(flip_index, np.int64)

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        heatmaps = np.asarray(self.backend(batch))  # (N, K, h, w)
        mirrored = np.ascontiguousarray(np.asarray(batch)[..., ::-1])  # (N, 3, H, W) mirrored crops
        heatmaps_m = np.asarray(self.backend(mirrored))[:, self.flip_index, :, ::-1]
        return ((heatmaps + heatmaps_m) * 0.5).astype(heatmaps.dtype, copy=False)


def rescore(
    box_scores: np.ndarray, keypoint_scores: np.ndarray, threshold: float = KEYPOINT_SCORE_THRESHOLD
) -> np.ndarray:
    """(N,) result scores: ``box_scores * mean(keypoint_scores > threshold)`` per person (0 if none)."""
    above = keypoint_scores > threshold  # (N, K)
    count = above.sum(axis=1)
    mean = np.where(count > 0, (keypoint_scores * above).sum(axis=1) / np.maximum(count, 1), 0.0)
    return np.asarray(box_scores, np.float64) * mean


def predict_dataset(
    estimator,
    dataset: KeypointDataset,
    boxes: str = "gt",
    detector=None,
    progress: bool = True,
    image_ids: Iterable[int] | None = None,
) -> list[dict]:
    """COCO keypoint results for every image of ``dataset``.

    estimator: ``TopDownEstimator`` (``estimate(image_bgr, xyxy (N, 4)) -> (keypoints (N, K, 2),
    scores (N, K))``); detector: ``.detect(image_bgr) -> Detections`` (for ``boxes='detector'``).
    Each result: ``image_id``, ``category_id``, ``keypoints`` (flat ``x, y, score`` x K), ``score``
    (see ``rescore``), ``bbox`` (xywh of the box used) and, for ground-truth boxes, ``ann_id``.
    """
    if boxes not in ("gt", "detector"):
        raise InputError(f"--boxes: expected 'gt' or 'detector', got {boxes!r}")
    if boxes == "detector" and detector is None:
        raise InputError("--boxes detector needs a person detector (--detector FILE.onnx)")
    by_image = dataset.instances_by_image()
    ids = sorted(dataset.images) if image_ids is None else list(image_ids)
    cat_id = dataset.category.id
    results: list[dict] = []
    for image_id in tqdm(ids, desc="eval", unit="img", disable=not progress):
        people = [p for p in by_image[image_id] if not p.iscrowd and p.num_labelled > 0]
        if boxes == "gt" and not people:
            continue
        image = load_image(dataset.images[image_id].path)
        if boxes == "gt":
            xyxy = np.stack([p.xyxy for p in people]).astype(np.float32)  # (N, 4)
            box_scores = np.ones(len(people))
            ann_ids = [p.ann_id for p in people]
        else:
            det = detector.detect(image)
            if len(det) == 0:
                continue
            xyxy, box_scores, ann_ids = det.xyxy.astype(np.float32), det.score, [None] * len(det)
        keypoints, scores = estimator.estimate(image, xyxy)  # (N, K, 2), (N, K)
        keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
        final = rescore(box_scores, scores)
        for i in range(len(xyxy)):
            flat = np.concatenate([keypoints[i], scores[i][:, None]], axis=1).ravel()
            x1, y1, x2, y2 = (float(v) for v in xyxy[i])
            record = {
                "image_id": int(image_id),
                "category_id": cat_id,
                "keypoints": [round(float(v), 3) for v in flat],
                "score": float(final[i]),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            }
            if ann_ids[i] is not None:
                record["ann_id"] = int(ann_ids[i])
            results.append(record)
    return results
