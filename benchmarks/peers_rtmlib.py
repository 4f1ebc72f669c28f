"""rtmlib's documented top-down loop on one clip, for benchmarks/peers.py (run as its own process).

    python benchmarks/peers_rtmlib.py CLIP DETECTOR.onnx VITPOSE.onnx OUT.jsonl [--backend onnxruntime]

OpenCV decode, rtmlib ``YOLOX`` (person class, score 0.3, NMS 0.45: posestream's detector defaults
without the tracker), rtmlib ``ViTPose`` one box at a time; one JSON line per frame with the people's
keypoints, as posestream's ``--out-json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np
from rtmlib import YOLOX, ViTPose


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("detector")
    parser.add_argument("pose_model")
    parser.add_argument("out")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    det = YOLOX(args.detector, model_input_size=(416, 416), det_mode="multiclass", nms_thr=0.45, score_thr=0.3,
                backend=args.backend)  # fmt: skip
    pose = ViTPose(args.pose_model, backend=args.backend)
    capture = cv2.VideoCapture(args.clip)
    index = 0
    with open(args.out, "w") as out:
        while args.max_frames is None or index < args.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            boxes, classes = det(frame)
            people = [b for b, c in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(classes).reshape(-1)) if c == 0]
            records = []
            if people:
                keypoints, scores = pose(frame, bboxes=people)
                for kp, sc in zip(keypoints, scores):
                    records.append({"keypoints": np.concatenate([kp, sc[:, None]], 1).round(3).tolist()})
            out.write(json.dumps({"frame": index, "people": records}) + "\n")
            index += 1
    capture.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
