"""``posestream eval``: OKS AP of a pose model on a COCO-format keypoint dataset.

Writes to ``--out-dir``: ``results.json`` (COCO keypoint results), ``report.json`` and ``report.md``
(pycocotools AP/AR and per-keypoint errors). See ``posestream.evaluation.predict`` for the box
modes, the result score and the flip test.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from posestream.datasets.coco_keypoints import KeypointDataset, load_keypoint_dataset
from posestream.errors import InputError
from posestream.evaluation.coco_eval import COCO_STAT_NAMES, evaluate_results
from posestream.evaluation.predict import FlipTestBackend, predict_dataset

__all__ = ["add_arguments", "run", "open_backend"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder with the images the annotations name")
    parser.add_argument("--annotations", required=True, help="COCO person_keypoints JSON")
    parser.add_argument("--pose-model", help="exported ViTPose ONNX file")
    parser.add_argument("--variant", help="build ViTPose s|b|l|h in PyTorch (with --weights)")
    parser.add_argument(
        "--weights", help="checkpoint, known name (vitpose-b-coco), Hub id / transformers folder, a train run's "
        "best.pth, or 'none'"
    )
    parser.add_argument("--decoder", choices=["classic", "simple"], default="classic",
                        help="with --variant and random weights (files say their own)")  # fmt: skip
    parser.add_argument("--expert", help="ViTPose+ expert: coco, aic, mpii, ap10k, apt36k, wholebody")
    parser.add_argument(
        "--boxes", choices=["gt", "detector"], default="gt", help="ground-truth boxes or a detector"
    )
    parser.add_argument("--detector", help="person detector ONNX (YOLOX / Ultralytics) for --boxes detector")
    parser.add_argument("--detector-score", type=float, default=0.3, help="detector score threshold")
    parser.add_argument(
        "--flip-test", action="store_true", help="average with the mirrored crop (ViTPose test)"
    )
    parser.add_argument("--device", default="cpu", help="torch device for --variant (cpu, cuda)")
    parser.add_argument(
        "--providers", default="cpu", help="onnxruntime providers for --pose-model, e.g. cuda,cpu"
    )
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8", "fp16"], default="auto",
                        help="auto: bf16 where the CPU has AVX512_BF16/AMX, else fp32; int8 needs --calibration")
    parser.add_argument("--calibration", metavar="DIR",
                        help="int8 calibration pictures: a folder with images/ and person_keypoints.json")
    parser.add_argument("--out-dir", default="eval_out", help="where results.json and report.{json,md} go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def open_backend(args: argparse.Namespace, dataset: KeypointDataset):
    """The pose backend the flags ask for (ONNX file, or PyTorch ViTPose with weights / random)."""
    from posestream.runtime.factory import open_pose_backend

    if bool(args.pose_model) == bool(args.variant or args.weights):
        raise InputError("give either --pose-model X.onnx or --variant V --weights W|none")
    precision = getattr(args, "precision", "auto")
    if args.pose_model:
        calibration = None
        if getattr(args, "calibration", None):
            from posestream.evaluation.calibration import pose_calibration

            calibration = pose_calibration(args.calibration)
        return open_pose_backend(args.pose_model, providers=tuple(args.providers.split(",")), precision=precision,
                                 calibration=calibration)  # fmt: skip

    random = str(args.weights or "none").strip().lower() in ("none", "random", "")
    # Random weights get the dataset's keypoints; real ones keep their own (checked against the data later).
    return open_pose_backend(
        None, variant=args.variant, weights=args.weights or "none", decoder=args.decoder,
        expert=getattr(args, "expert", None), precision=precision,
        keypoint_set=dataset.category.keypoint_set if random else None, device=args.device,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from posestream.estimation.topdown import TopDownEstimator

    dataset = load_keypoint_dataset(args.images, args.annotations)
    backend = open_backend(args, dataset)
    dataset = dataset.for_model(backend.keypoint_set)  # the model's names, flip pairs and OKS sigmas
    detector = None
    if args.boxes == "detector":
        if not args.detector:
            raise InputError("--boxes detector needs --detector FILE.onnx")
        from posestream.detection import load_person_detector

        detector = load_person_detector(args.detector, score_threshold=args.detector_score)
    if args.flip_test:
        backend = FlipTestBackend(backend, dataset.category.flip_index)
    results = predict_dataset(
        TopDownEstimator(backend), dataset, boxes=args.boxes, detector=detector, progress=not args.no_progress
    )
    meta = {
        "annotations": str(args.annotations),
        "model": args.pose_model or f"ViTPose-{args.variant} weights {args.weights}",
        "random_weights": bool(backend.random_weights),
        "boxes": args.boxes + (f" ({args.detector}, score > {args.detector_score})" if detector else ""),
        "flip_test": bool(args.flip_test),
        "score": "box score x mean of keypoint scores > 0.2 (mmpose/ViTPose rescoring); no OKS NMS",
    }
    report = evaluate_results(dataset, results, meta=meta)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results))
    json_path, md_path = report.write(out)
    log.info("wrote %s, %s, %s", out / "results.json", json_path, md_path)
    line = "  ".join(f"{name} {report.stats[name]:.3f}" for name in COCO_STAT_NAMES[:6])
    print(f"{line}\n(report: {md_path})")
    if backend.random_weights:  # on the terminal too, not only in the report files
        print("posestream: WARNING: RANDOM WEIGHTS: this model was not loaded from a checkpoint; its AP "
              "measures noise", file=sys.stderr)  # fmt: skip
    return 0
