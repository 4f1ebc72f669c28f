"""Smoothing cost per keypoint: COCO-17 vs whole-body 133 keypoints, for each filter.

A ``PoseSmoother`` (the smooth stage's core) filters ``--people`` tracked people for ``--frames``
frames of synthetic keypoints (random walk + jitter, scores in [0.3, 1], 30 fps); the time per frame
is the median over ``--repeats`` runs after one warm-up run. Figures per filter and K: ms per
frame, microseconds per keypoint per frame, and the ratio of the 133-keypoint per-keypoint cost to
the 17-keypoint one (issue 12 asks for at most 2x: a per-person filter that is linear in K).

Run: ``python benchmarks/smoothing_scaling.py --out-dir benchmarks/results``. Writes
``smoothing_scaling.json`` and ``smoothing_scaling.md``; the load average at the start and the end
is recorded with the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from posestream.filters.smoother import PoseSmoother
from posestream.types import Poses

FPS = 30.0


def run_once(kind: str, k: int, people: int, frames: int, seed: int) -> float:
    """Seconds per frame of one pass over a fresh smoother."""
    rng = np.random.default_rng(seed)
    smoother = PoseSmoother(kind=kind)
    base = rng.uniform(100, 900, size=(people, k, 2)).astype(np.float32)
    steps = rng.normal(0, 3, size=(frames, people, k, 2)).astype(np.float32).cumsum(axis=0)
    scores = rng.uniform(0.3, 1.0, size=(frames, people, k)).astype(np.float32)
    boxes = np.tile(np.float32([0, 0, 100, 200]), (people, 1))
    ids = np.arange(1, people + 1, dtype=np.int64)
    packets = [Poses(base + steps[i], scores[i], boxes, ids) for i in range(frames)]
    t0 = time.perf_counter()
    for i, poses in enumerate(packets):
        smoother(poses, i / FPS)
    return (time.perf_counter() - t0) / frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    load_start = os.getloadavg()
    rows = []
    for kind in ("one_euro", "kalman"):
        per_k = {}
        for k in (17, 133):
            run_once(kind, k, args.people, 5, seed=99)  # warm-up
            seconds = float(
                np.median([run_once(kind, k, args.people, args.frames, seed=r) for r in range(args.repeats)])
            )
            per_k[k] = seconds
            rows.append(
                {
                    "filter": kind,
                    "keypoints": k,
                    "people": args.people,
                    "ms_per_frame": seconds * 1e3,
                    "us_per_keypoint_frame": seconds * 1e6 / (k * args.people),
                }
            )
        ratio = (per_k[133] / 133) / (per_k[17] / 17)
        for row in rows[-2:]:
            row["per_keypoint_ratio_133_vs_17"] = ratio
    results = {
        "rows": rows,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "frames": args.frames,
        "repeats": args.repeats,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "smoothing_scaling.json").write_text(json.dumps(results, indent=2))
    lines = ["# Smoothing cost per keypoint: 17 vs 133 keypoints", "",
             f"{args.people} tracked people, {args.frames} frames, median of {args.repeats} runs; "
             f"load average {load_start[0]:.1f} at the start, {results['loadavg_end'][0]:.1f} at the end "
             f"({results['cores']} cores, shared). Written by `benchmarks/smoothing_scaling.py`.", "",
             "| filter | K | ms per frame | us per keypoint per frame | per-keypoint cost 133 / 17 |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['filter']} | {r['keypoints']} | {r['ms_per_frame']:.2f} | "
            f"{r['us_per_keypoint_frame']:.2f} | {r['per_keypoint_ratio_133_vs_17']:.2f} |"
        )
    (args.out_dir / "smoothing_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
