"""Person recall of a detector on the shared COCO val subset.

For each image of ``coco/val_subset`` the detector runs once; a ground-truth person counts as found
when a detection overlaps it with IoU >= 0.5, one-to-one (greedy in descending detection score, as
COCO matches: one box cannot find two people). Only non-crowd people *larger than 32x32 px* count,
by COCO's own medium+large split: the annotation's ``area`` (the segmentation area) > 32^2, 165
people here. Two other readings are reported too: box width and height both > 32 px (also 165,
but a different 165: 8 people differ each way) and box area > 32^2 (188 people). The "any match"
recall (a GT is found if any detection has IoU >= 0.5 with it, no one-to-one) is what DATA.md's
reference figure (115/165) counts; it is reported beside the one-to-one figure.

Also reported: detections per image, the share of detections that match some annotated person
(IoU >= 0.5 with any person, crowd and small ones included: a precision proxy, since COCO leaves
some people unannotated), and the median wall time of ``detect`` per image (letterbox + inference
+ decode + NMS).

    python benchmarks/detector_recall.py [--shared ../shared] [--model FILE] [--out-dir reports]

Writes ``detector_recall.json`` and ``detector_recall.md`` to ``--out-dir`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from posestream.errors import InputError
from posestream.detection import load_person_detector

REPO = Path(__file__).resolve().parents[1]
MIN_SIDE = 32  # people must be larger than MIN_SIDE x MIN_SIDE pixels to count
IOU_MATCH = 0.5

logger = logging.getLogger("detector_recall")


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """IoU of every pair: (N, 4) xyxy x (M, 4) xyxy -> (N, M)."""
    tl = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    br = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a_xyxy[:, 2:] - a_xyxy[:, :2], axis=1)
    area_b = np.prod(b_xyxy[:, 2:] - b_xyxy[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def any_matches(det_xyxy: np.ndarray, gt_xyxy: np.ndarray, threshold: float) -> int:
    """How many GT boxes have some detection with IoU >= threshold (a detection may count twice)."""
    if len(det_xyxy) == 0 or len(gt_xyxy) == 0:
        return 0
    return int((box_iou(det_xyxy, gt_xyxy).max(axis=0) >= threshold).sum())


def greedy_matches(det_xyxy: np.ndarray, gt_xyxy: np.ndarray, threshold: float) -> int:
    """How many GT boxes get a detection (IoU >= threshold), one-to-one, detections in given order."""
    if len(det_xyxy) == 0 or len(gt_xyxy) == 0:
        return 0
    iou = box_iou(det_xyxy, gt_xyxy)  # (D, G)
    taken = np.zeros(len(gt_xyxy), bool)
    for row in iou:  # detections arrive in descending score order
        row = np.where(taken, -1.0, row)
        best = int(np.argmax(row))
        if row[best] >= threshold:
            taken[best] = True
    return int(taken.sum())


@dataclass
class Result:
    model: str
    detector: str
    images: int
    gt_people: int
    found: int
    recall: float
    found_any_match: int  # GT with any detection at IoU >= 0.5, not one-to-one (DATA.md's count)
    recall_any_match: float
    other_size_rules: dict[str, dict[str, float]]  # rule -> gt_people, found, recall (one-to-one)
    detections_per_image: float
    detections_matching_a_person: float
    median_ms_per_image: float
    p90_ms_per_image: float
    score_threshold: float
    nms_iou_threshold: float
    intra_op_threads: int
    machine: str


def evaluate(shared: Path, model: Path, score_threshold: float, nms_iou: float, threads: int) -> Result:
    subset = shared / "coco" / "val_subset"
    ann_path = subset / "person_keypoints.json"
    if not ann_path.is_file():
        raise InputError(f"{ann_path}: COCO annotations not found (set --shared or POSESTREAM_SHARED)")
    coco = json.loads(ann_path.read_text())
    person_ids = {c["id"] for c in coco["categories"] if c["name"] == "person"}
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        if ann["category_id"] in person_ids:
            by_image[ann["image_id"]].append(ann)

    detector = load_person_detector(
        model, score_threshold=score_threshold, nms_iou_threshold=nms_iou, intra_op_threads=threads
    )
    rules = {  # the first one is the headline figure
        "segm_area_gt_32sq": lambda a: a["area"] > MIN_SIDE**2,
        "box_w_and_h_gt_32": lambda a: a["bbox"][2] > MIN_SIDE and a["bbox"][3] > MIN_SIDE,
        "box_area_gt_32sq": lambda a: a["bbox"][2] * a["bbox"][3] > MIN_SIDE**2,
    }
    main_rule = next(iter(rules))
    gt_total = dict.fromkeys(rules, 0)
    found = dict.fromkeys(rules, 0)
    found_any = 0
    n_det = n_det_matching = 0
    times_ms = []
    for img in coco["images"]:
        path = subset / "images" / img["file_name"]
        image = cv2.imread(str(path))
        if image is None:
            raise InputError(f"{path}: image missing or unreadable")
        t0 = time.perf_counter()
        dets = detector.detect(image)
        times_ms.append((time.perf_counter() - t0) * 1e3)

        anns = by_image[img["id"]]
        xywh = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        all_xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        for rule, keep in rules.items():
            chosen = np.array([not a["iscrowd"] and keep(a) for a in anns], bool)
            gt_total[rule] += int(chosen.sum())
            found[rule] += greedy_matches(dets.xyxy, all_xyxy[chosen], IOU_MATCH)
            if rule == main_rule:
                found_any += any_matches(dets.xyxy, all_xyxy[chosen], IOU_MATCH)
        n_det += len(dets)
        if len(dets) and len(anns):
            n_det_matching += int((box_iou(dets.xyxy, all_xyxy).max(axis=1) >= IOU_MATCH).sum())

    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return Result(
        model=str(model),
        detector=detector.name,
        images=len(coco["images"]),
        gt_people=gt_total[main_rule],
        found=found[main_rule],
        recall=ratio(found[main_rule], gt_total[main_rule]),
        found_any_match=found_any,
        recall_any_match=ratio(found_any, gt_total[main_rule]),
        other_size_rules={
            rule: {
                "gt_people": gt_total[rule],
                "found": found[rule],
                "recall": ratio(found[rule], gt_total[rule]),
            }
            for rule in rules
            if rule != main_rule
        },
        detections_per_image=n_det / len(coco["images"]),
        detections_matching_a_person=ratio(n_det_matching, n_det),
        median_ms_per_image=float(np.median(times_ms)),
        p90_ms_per_image=float(np.percentile(times_ms, 90)),
        score_threshold=score_threshold,
        nms_iou_threshold=nms_iou,
        intra_op_threads=threads,
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    )


def markdown(r: Result) -> str:
    return "\n".join(
        [
            "# Detector person recall, COCO val subset",
            "",
            f"Model `{Path(r.model).name}` ({r.detector}), score > {r.score_threshold}, "
            f"NMS IoU {r.nms_iou_threshold}, "
            f"{r.intra_op_threads} onnxruntime threads, {r.images} images; {r.machine}.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| recall @ IoU {IOU_MATCH}, one-to-one; non-crowd people, "
            f"area > {MIN_SIDE}^2 (COCO medium+large) | "
            f"**{r.found}/{r.gt_people} = {r.recall:.3f}** |",
            f"| same, any-match (one box may find two people; DATA.md's count) | "
            f"{r.found_any_match}/{r.gt_people} = {r.recall_any_match:.3f} |",
            *(
                f"| same as the first, people chosen by {rule} | "
                f"{v['found']}/{v['gt_people']} = {v['recall']:.3f} |"
                for rule, v in r.other_size_rules.items()
            ),
            f"| detections per image | {r.detections_per_image:.2f} |",
            f"| detections matching an annotated person (IoU >= {IOU_MATCH}) | "
            f"{r.detections_matching_a_person:.3f} |",
            f"| median / p90 ms per image (detect: letterbox + inference + decode + NMS) | "
            f"{r.median_ms_per_image:.1f} / {r.p90_ms_per_image:.1f} |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared, help="data (default %(default)s)")
    parser.add_argument(
        "--model", type=Path, help="ONNX detector (default SHARED/models/yolox_nano_coco.onnx)"
    )
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--nms-iou-threshold", type=float, default=0.45)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--out-dir", type=Path, default=REPO / "reports")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = args.model or args.shared / "models" / "yolox_nano_coco.onnx"
    try:
        result = evaluate(args.shared, model, args.score_threshold, args.nms_iou_threshold, args.threads)
    except InputError as e:
        logger.error("%s", e)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "detector_recall.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    report = markdown(result)
    (args.out_dir / "detector_recall.md").write_text(report)
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
