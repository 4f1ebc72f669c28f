"""By-hand fine-tuning smoke run: ViTPose (default S) on train_mini for a few hundred steps on CPU.

    .venv/bin/python benchmarks/finetune_smoke.py --steps 200 --batch-size 8 --out /tmp/smoke_s

Writes the run folder of ``posestream.training.loop.train`` plus ``summary.json`` (loss curve in
blocks of 10 steps, seconds per step, AP on val_subset with GT boxes at the end) and prints a short
markdown summary. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.models.vitpose import build_vitpose
from posestream.training.loop import TrainConfig, evaluate_model, train

log = logging.getLogger("finetune_smoke")


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    default_shared = os.environ.get("POSESTREAM_SHARED", str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--shared", default=default_shared)
    parser.add_argument("--variant", default="s")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval", action="store_true", help="evaluate on val_subset (GT boxes) at the end")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    root = Path(args.shared) / "coco"
    train_root = root / "train_mini"
    train_set = load_keypoint_dataset(train_root / "images", train_root / "person_keypoints.json")
    steps_per_epoch = len(train_set.keypoint_instances()) // args.batch_size
    epochs = math.ceil(args.steps / steps_per_epoch)
    torch.manual_seed(0)
    model = build_vitpose(args.variant, drop_path_rate=0.3)
    config = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, progress=False)
    t0 = time.monotonic()
    result = train(model, train_set, args.out, config)
    seconds = time.monotonic() - t0
    losses = np.array(result.step_losses)
    blocks = [float(b.mean()) for b in np.array_split(losses, max(1, len(losses) // 10))]
    summary = {
        "variant": args.variant,
        "steps": len(losses),
        "batch_size": args.batch_size,
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, len(losses)), 3),
        "threads": args.threads,
        "loss_first10": float(losses[:10].mean()),
        "loss_last10": float(losses[-10:].mean()),
        "loss_blocks_of_10": [round(b, 6) for b in blocks],
        "init": "random (no ViTPose weights on this machine)",
    }
    if args.eval:
        val_root = root / "val_subset"
        val = load_keypoint_dataset(val_root / "images", val_root / "person_keypoints.json")
        summary["val_subset_AP_gt_boxes"] = evaluate_model(model, val).stats
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
