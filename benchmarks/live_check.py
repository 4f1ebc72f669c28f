"""Live rehearsal: sports2d_demo.mp4 played at its native 30 fps (``--realtime``), webcam preset,
ViTPose-S: frames processed out of those offered, and capture-to-end latency.

    python benchmarks/live_check.py --out benchmarks/results/cpu-2core/live

The pipeline is the one `posestream run CLIP --realtime --config webcam --detector yolox
--pose-model S.onnx --out-json J` builds, plus a last stage that notes, per frame, the seconds from
capture (the decode stage stamps it when it hands the frame over) to the end of the graph.
Goal (issue 9): >= 25 of 30 fps processed, p95 latency <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class LatencyProbe:
    name = "latency"

    def __init__(self) -> None:
        self.latency_s: list[float] = []

    def open(self, ctx) -> None:
        pass

    def process(self, packet):
        self.latency_s.append(time.monotonic() - packet.frame.t_capture)
        return packet

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="sports2d_demo.mp4")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core/live"))
    args = parser.parse_args()
    from posestream.app import build_pipeline
    from posestream.config import load_config

    shared = Path(os.environ.get("POSESTREAM_SHARED", "../shared")).resolve()
    work = Path(tempfile.mkdtemp(prefix="live-"))
    model = work / "vitpose-s.onnx"
    subprocess.run([str(Path(sys.executable).parent / "posestream"), "export", "--variant", "s", "--weights", "none",
                    "--out", str(model)], check=True, capture_output=True)  # fmt: skip
    overrides = [f"detector.model={shared / 'models' / 'yolox_nano_coco.onnx'}", f"pose.model={model}",
                 "source.realtime=true", f"output.json={work / 'o.jsonl'}", *args.set]  # fmt: skip
    config = load_config("webcam", overrides)
    probe = LatencyProbe()
    load = os.getloadavg()
    pipeline = build_pipeline(str(shared / "media" / args.clip), config, extra_stages=[probe])
    offered = pipeline.source.frame_count
    result = pipeline.graph.run()
    latency_ms = np.asarray(probe.latency_s) * 1e3
    processed = len(probe.latency_s)
    fps_offered = pipeline.source.fps or 30.0
    report = {
        "clip": args.clip, "overrides": overrides[3:], "load_average_start": [round(x, 2) for x in load],
        "load_average_end": [round(x, 2) for x in os.getloadavg()], "frames_offered": offered,
        "frames_processed": processed, "fps_offered": fps_offered,
        "fps_processed": round(processed / result.wall_s, 2), "wall_s": round(result.wall_s, 2),
        "latency_ms": {"p50": round(float(np.percentile(latency_ms, 50)), 1),
                       "p95": round(float(np.percentile(latency_ms, 95)), 1)},
        "resources": pipeline.resources, "stages": [s.as_dict() for s in result.stages],
        "goal": {"fps_processed": 25, "latency_p95_ms": 150},
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live.json").write_text(json.dumps(report, indent=2))
    md = (f"# Live rehearsal: {args.clip} at {fps_offered:.0f} fps, webcam preset, ViTPose-S\n\n"
          f"Load average {report['load_average_start']} -> {report['load_average_end']}. "
          f"{processed} of {offered} frames processed in {report['wall_s']} s = {report['fps_processed']} fps; "
          f"capture-to-end latency p50 {report['latency_ms']['p50']} ms, p95 {report['latency_ms']['p95']} ms. "
          f"Goal: >= 25 fps, p95 <= 150 ms.\n\n" + "\n".join(f"- {k}: {v}" for k, v in pipeline.resources.items()) + "\n")
    (args.out / "live.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
