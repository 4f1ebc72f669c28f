"""OKS AP through pycocotools, plus per-keypoint error metrics, written as JSON and markdown.

The AP numbers are pycocotools' own (``COCOeval(iouType='keypoints')``), not a re-implementation;
the only thing set on it is ``kpt_oks_sigmas`` from the dataset's category: the annotations file's
own, else the evaluated model's ``KeypointSet`` (``KeypointDataset.for_model``), else the registered
set's with the same names. The report names which (``meta['oks_sigmas']``).

Per-keypoint metrics, over matched non-crowd people with labelled keypoints (``v > 0``):

- ``oks_error``: mean of ``d / (s * k_i)``, the distance normalised as inside OKS, with
  ``s = sqrt(area)`` of the ground-truth annotation and ``k_i = 2 * sigma_i`` (the COCO OKS constant:
  pycocotools uses ``vars = (2 * sigma) ** 2``). ``exp(-e**2 / 2)`` of it is that joint's OKS term.
- ``pck@0.05``: fraction with ``d < 0.05 * max(w, h)`` of the ground-truth *box*.

Matching: a prediction that carries ``ann_id`` (made from that ground-truth box) is paired with it;
others are matched per image greedily, the (prediction, person) pair of highest OKS first (OKS > 0,
no threshold, so a poor pose still counts as an error rather than vanishing).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posestream.datasets.coco_keypoints import KeypointDataset
from posestream.errors import InputError

__all__ = [
    "COCO_STAT_NAMES", "EvalReport", "coco_keypoint_ap", "per_keypoint_metrics", "evaluate_results", "oks",
]  # fmt: skip

log = logging.getLogger(__name__)

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
PCK_FRACTION = 0.05


@dataclass
class EvalReport:
    """What one evaluation produced. ``per_keypoint`` maps joint name -> metrics dict."""

    stats: dict[str, float]
    per_keypoint: dict[str, dict[str, float]]
    num_predictions: int
    num_gt: int
    num_matched: int
    meta: dict = field(default_factory=dict)

    @property
    def ap(self) -> float:
        return self.stats["AP"]

    def to_json(self) -> dict:
        return {
            "stats": self.stats,
            "per_keypoint": self.per_keypoint,
            "num_predictions": self.num_predictions,
            "num_gt_people": self.num_gt,
            "num_matched": self.num_matched,
            "meta": self.meta,
        }

    def to_markdown(self) -> str:
        lines = ["# Keypoint evaluation", ""]
        for key, val in self.meta.items():
            lines.append(f"- {key}: {val}")
        lines += [
            f"- predictions: {self.num_predictions}; ground-truth people (non-crowd, with keypoints): "
            f"{self.num_gt}; matched: {self.num_matched}",
            "",
            "| " + " | ".join(COCO_STAT_NAMES) + " |",
            "|" + "---|" * len(COCO_STAT_NAMES),
            "| " + " | ".join(f"{self.stats[n]:.3f}" for n in COCO_STAT_NAMES) + " |",
            "",
            "OKS AP by pycocotools COCOeval(iouType='keypoints'), maxDets 20.",
            "",
            "| keypoint | labelled | mean OKS-normalised error d/(sqrt(area)*2*sigma) "
            "| PCK@0.05 max(w,h) of GT box |",
            "|---|---|---|---|",
        ]
        for name, m in self.per_keypoint.items():
            lines.append(f"| {name} | {m['count']} | {m['oks_error']:.3f} | {m['pck@0.05']:.3f} |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2))
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _quiet(fn, *args):
    """Call a pycocotools function, sending what it prints to the debug log instead of stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = fn(*args)
    if buf.getvalue().strip():
        log.debug("pycocotools: %s", buf.getvalue().strip())
    return out


def coco_keypoint_ap(dataset: KeypointDataset, results: list[dict]) -> dict[str, float]:
    """The 10 COCOeval keypoint stats (``COCO_STAT_NAMES``) for COCO-format ``results``.

    results: dicts with ``image_id``, ``category_id``, ``keypoints`` (flat 3K), ``score``.
    No predictions at all gives zeros (pycocotools' loadRes cannot take an empty list).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _require_sigmas(dataset)
    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    coco_gt = COCO()
    coco_gt.dataset = json.loads(json.dumps(dataset.coco_json))  # loadRes copies 'images' from it
    _quiet(coco_gt.createIndex)
    # Only the four COCO result keys: loadRes would treat a result with 'bbox' as a box result.
    keys = ("image_id", "category_id", "keypoints", "score")
    coco_dt = _quiet(coco_gt.loadRes, [{k: r[k] for k in keys} for r in results])
    coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
    coco_eval.params.kpt_oks_sigmas = np.asarray(dataset.category.sigmas, np.float64)
    coco_eval.params.catIds = [dataset.category.id]
    coco_eval.params.imgIds = sorted(dataset.images)
    _quiet(coco_eval.evaluate)
    _quiet(coco_eval.accumulate)
    _quiet(coco_eval.summarize)
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, coco_eval.stats)}


def _require_sigmas(dataset: KeypointDataset) -> None:
    cat = dataset.category
    if cat.sigmas is None:
        raise InputError(
            f"annotations file {dataset.annotations_path}: category {cat.id} ({cat.name!r}) has no OKS sigmas "
            "and neither has the model's keypoint set; add a 'sigmas' list (one per keypoint) to the category"
        )


def oks(pred_xy: np.ndarray, gt_kpts: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """OKS of one prediction (K, 2) against one ground truth (K, 3) with labelled joints ``v > 0``."""
    visible = gt_kpts[:, 2] > 0
    if not visible.any():
        return 0.0
    d2 = ((pred_xy - gt_kpts[:, :2]) ** 2).sum(axis=1)
    e = d2 / ((2 * sigmas) ** 2) / (area + np.spacing(1)) / 2
    return float(np.exp(-e[visible]).mean())


def _match(dataset: KeypointDataset, results: list[dict]) -> list[tuple[dict, object]]:
    """(result, PersonInstance) pairs; see the module docstring for the rule."""
    k = dataset.category.num_keypoints
    sigmas = dataset.category.sigmas
    gts = {p.ann_id: p for p in dataset.keypoint_instances()}
    pairs, used = [], set()
    free: dict[int, list[dict]] = {}
    for r in results:
        if r.get("ann_id") in gts:
            pairs.append((r, gts[r["ann_id"]]))
            used.add(r["ann_id"])
        else:
            free.setdefault(r["image_id"], []).append(r)
    by_image: dict[int, list] = {}
    for p in gts.values():
        if p.ann_id not in used:
            by_image.setdefault(p.image_id, []).append(p)
    for image_id, preds in free.items():
        candidates = by_image.get(image_id, [])
        if not candidates:
            continue
        xy = [np.asarray(r["keypoints"], np.float64).reshape(k, 3)[:, :2] for r in preds]
        table = np.array([[oks(x, g.keypoints, g.area, sigmas) for g in candidates] for x in xy])  # (P, G)
        while table.size and table.max() > 0:  # greedy on the best remaining (prediction, person) pair
            i, j = np.unravel_index(int(np.argmax(table)), table.shape)
            pairs.append((preds[i], candidates[j]))
            table[i, :] = -1.0
            table[:, j] = -1.0
    return pairs


def per_keypoint_metrics(dataset: KeypointDataset, results: list[dict]) -> tuple[dict[str, dict], int]:
    """Per joint ``{'count', 'oks_error', 'pck@0.05'}`` over matched people, and the match count."""
    cat = dataset.category
    _require_sigmas(dataset)
    k = cat.num_keypoints
    errors: list[list[float]] = [[] for _ in range(k)]
    hits: list[list[bool]] = [[] for _ in range(k)]
    pairs = _match(dataset, results)
    for r, gt in pairs:
        xy = np.asarray(r["keypoints"], np.float64).reshape(k, 3)[:, :2]
        d = np.linalg.norm(xy - gt.keypoints[:, :2], axis=1)  # (K,) pixels
        box_size = float(max(gt.xyxy[2] - gt.xyxy[0], gt.xyxy[3] - gt.xyxy[1]))
        s = np.sqrt(gt.area)
        for j in np.flatnonzero(gt.keypoints[:, 2] > 0):
            errors[j].append(d[j] / (s * 2 * cat.sigmas[j]))
            hits[j].append(bool(d[j] < PCK_FRACTION * box_size))
    out = {}
    for j, name in enumerate(cat.keypoints):
        n = len(errors[j])
        out[name] = {
            "count": n,
            "oks_error": float(np.mean(errors[j])) if n else float("nan"),
            "pck@0.05": float(np.mean(hits[j])) if n else float("nan"),
        }
    return out, len(pairs)


def evaluate_results(dataset: KeypointDataset, results: list[dict], meta: dict | None = None) -> EvalReport:
    """OKS AP (pycocotools) and per-keypoint metrics of ``results`` on ``dataset``.

    ``meta`` gains ``keypoint_set`` and ``oks_sigmas`` (where the sigmas came from) unless given.
    """
    stats = coco_keypoint_ap(dataset, results)
    per_kp, matched = per_keypoint_metrics(dataset, results)
    cat = dataset.category
    defaults = {"keypoint_set": cat.keypoint_set.describe(), "oks_sigmas": cat.sigmas_from}
    return EvalReport(
        stats=stats,
        per_keypoint=per_kp,
        num_predictions=len(results),
        num_gt=len(dataset.keypoint_instances()),
        num_matched=matched,
        meta={**defaults, **(meta or {})},
    )
