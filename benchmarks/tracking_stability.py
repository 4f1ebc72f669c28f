"""Track-id stability of the full pipeline on a real clip (no ground truth: see tracking/stability.py).

Runs `posestream run CLIP --detector D --pose-model P --out-json ...`, then counts id switches,
births after the first frame and track lengths from the JSON Lines. Writes JSON + markdown.

    python benchmarks/tracking_stability.py --pose-model s.onnx [--clip ...] [--out-dir reports]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from posestream import cli
from posestream.tracking.stability import id_stability

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(SHARED / "media" / "pose2sim_multiperson_cam01.mp4"))
    parser.add_argument("--detector", default=str(SHARED / "models" / "yolox_nano_coco.onnx"))
    parser.add_argument("--pose-model", help="ViTPose ONNX (optional: ids do not depend on it)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--out-dir", default="reports")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keypoints = out / "tracking_stability.jsonl"
    argv = ["run", args.clip, "--detector", args.detector, "--out-json", str(keypoints), "--no-progress"]
    if args.pose_model:
        argv += ["--pose-model", args.pose_model]
    if args.config:
        argv += ["--config", args.config]
    t0 = time.monotonic()
    code = cli.main(argv)
    if code != 0:
        return code
    frames = [[(p["track_id"], p["box_xyxy"]) for p in json.loads(x)["people"]] for x in keypoints.open()]
    stats = id_stability(frames).as_dict()
    report = {"clip": args.clip, "detector": args.detector, "pose_model": args.pose_model,
              "config": args.config or "default", "seconds": round(time.monotonic() - t0, 1), **stats}  # fmt: skip
    (out / "tracking_stability.json").write_text(json.dumps(report, indent=2))
    md = ["# Track-id stability", "", f"`{Path(args.clip).name}`, detector `{Path(args.detector).name}`", "",
          "| metric | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in stats.items()]  # fmt: skip
    md += ["", "id switch = boxes paired across consecutive frames (IoU >= 0.5) whose ids differ."]
    (out / "tracking_stability.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
