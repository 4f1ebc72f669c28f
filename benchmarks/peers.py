"""posestream against rtmlib on the same clip, detector file and ViTPose weights: whole process, interleaved.

    python benchmarks/peers.py --clips pose2sim_multiperson_cam01.mp4 sports2d_demo.mp4 --rounds 3

Needs the optional benchmark dependency rtmlib (``pip install rtmlib --no-deps``: its own
requirements name opencv-python, which would shadow the headless OpenCV posestream uses; rtmlib only
needs cv2, numpy and onnxruntime, all present). rtmlib's ``YOLOX`` and ``ViTPose`` classes take the
same local ONNX files posestream runs: ``../shared/models/yolox_nano_coco.onnx`` and ViTPose-S
exported once here by ``posestream export`` (seeded random weights: timings are real, keypoints are
not).

Each round runs, one after the other (interleaved, so load changes hit both alike), one fresh
process per contestant, timed from launch to exit:

* posestream: the README's CPU command, ``posestream run CLIP --detector ... --pose-model ...
  --out-video ... --out-json ...`` plus the settings given with ``--posestream-args``;
* rtmlib: ``benchmarks/peers_rtmlib.py``, rtmlib's documented loop (OpenCV decode, YOLOX, ViTPose one
  person at a time) writing JSON lines only (no video: less work than posestream does).

fps = frames / wall seconds; people/s = people posed (from each JSON output) / wall seconds.
Writes ``peers.json`` and ``peers.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CLIPS = ["pose2sim_multiperson_cam01.mp4", "sports2d_demo.mp4"]


def count_output(path: Path) -> tuple[int, int]:
    """(frames, people) in a JSON-lines keypoint file (posestream's or the rtmlib loop's)."""
    frames = people = 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        frames += 1
        people += len(record["people"])
    return frames, people


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=DEFAULT_CLIPS, help="files under $POSESTREAM_SHARED/media")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=None, help="first N frames of each clip")
    parser.add_argument("--posestream-args", default="", help="extra `posestream run` flags, one string")
    parser.add_argument("--rtmlib-backend", default="onnxruntime", choices=["onnxruntime", "openvino"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core/peers"))
    args = parser.parse_args()

    shared = Path(os.environ.get("POSESTREAM_SHARED", "../shared")).resolve()
    detector = shared / "models" / "yolox_nano_coco.onnx"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "POSESTREAM_SHARED": str(shared)}
    work = Path(tempfile.mkdtemp(prefix="peers-"))
    pose_model = work / "vitpose-s-random.onnx"
    subprocess.run([str(bin_dir / "posestream"), "export", "--variant", "s", "--weights", "none",
                    "--out", str(pose_model)], env=env, check=True, capture_output=True)  # fmt: skip
    ps_extra = args.posestream_args.split()
    load_start = os.getloadavg()
    results = []
    for clip_name in args.clips:
        clip = shared / "media" / clip_name
        limit = ["--max-frames", str(args.max_frames)] if args.max_frames else []
        runs: dict[str, list[dict]] = {"posestream": [], "rtmlib": []}
        for round_index in range(args.rounds):
            for who in ("posestream", "rtmlib"):
                out_json = work / f"{who}-{round_index}.jsonl"
                if who == "posestream":
                    cmd = [str(bin_dir / "posestream"), "run", str(clip), "--detector", str(detector),
                           "--pose-model", str(pose_model), "--out-video", str(work / "ps.mp4"),
                           "--out-json", str(out_json), "--no-progress", *limit, *ps_extra]  # fmt: skip
                else:
                    cmd = [sys.executable, str(HERE / "peers_rtmlib.py"), str(clip), str(detector), str(pose_model),
                           str(out_json), "--backend", args.rtmlib_backend, *limit]  # fmt: skip
                load = os.getloadavg()[0]
                wall = timed(cmd, env)
                frames, people = count_output(out_json)
                runs[who].append({"wall_s": round(wall, 3), "frames": frames, "people": people,
                                  "fps": round(frames / wall, 3), "people_per_s": round(people / wall, 3),
                                  "load_1min": round(load, 2)})  # fmt: skip
                print(f"{clip_name} round {round_index} {who}: {frames} frames, {people} people, "
                      f"{wall:.1f} s -> {frames / wall:.2f} fps, {people / wall:.2f} people/s (load {load:.1f})",
                      file=sys.stderr, flush=True)  # fmt: skip
        summary = {who: {"fps": statistics.median(r["fps"] for r in rs),
                         "people_per_s": statistics.median(r["people_per_s"] for r in rs)}
                   for who, rs in runs.items()}  # fmt: skip
        ratio = summary["posestream"]["people_per_s"] / max(summary["rtmlib"]["people_per_s"], 1e-9)
        results.append({"clip": clip_name, "runs": runs, "median": summary, "people_per_s_ratio": round(ratio, 3)})

    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "posestream_command": "posestream run CLIP --detector yolox_nano_coco.onnx --pose-model vitpose-s-random.onnx "
        f"--out-video V --out-json J {args.posestream_args}".strip(),
        "rtmlib": f"rtmlib {_version('rtmlib')} backend {args.rtmlib_backend}: YOLOX + ViTPose, JSON only",
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cores": len(os.sched_getaffinity(0)),
        "weights": "ViTPose-S random (seeded export): timings are real, keypoints are not",
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# posestream vs rtmlib, whole process, interleaved rounds",
        "",
        f"`{report['command']}` on {report['cores']} cores; load average {report['load_average_start']} at start, "
        f"{report['load_average_end']} at end (a shared machine: see the per-round load in peers.json).",
        f"posestream: `{report['posestream_command']}`; {report['rtmlib']}. {report['weights']}.",
        "",
        "| clip | posestream fps | rtmlib fps | posestream people/s | rtmlib people/s | ratio people/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["median"]
        lines.append(f"| {r['clip']} | {m['posestream']['fps']:.2f} | {m['rtmlib']['fps']:.2f} | "
                     f"{m['posestream']['people_per_s']:.2f} | {m['rtmlib']['people_per_s']:.2f} | "
                     f"{r['people_per_s_ratio']:.2f}x |")  # fmt: skip
    (args.out / "peers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
