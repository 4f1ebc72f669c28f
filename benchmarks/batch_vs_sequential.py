"""Throughput of `posestream batch` against `posestream run` on the same videos, one after another.

Both sides do the same work with the same config: YOLOX-Nano + ViTPose (ONNX) over the four shared
clips, writing the annotated video, JSON Lines and CSV of every clip. Each side is timed as a user
would see it, from the command's start to its exit, so process start-up, model loading and (for
batch) Ray's start-up are counted. Modes:

  sequential  `posestream run CLIP ...` for each clip, one after another (default threads: 2)
  batch-2x1   `posestream batch CLIPS ... --workers 2 --cpus-per-task 1` (2 videos at once, 1 thread each)
  batch-1x2   `posestream batch CLIPS ... --workers 1 --cpus-per-task 2` (Ray's cost alone: 1 video at a time)

Also measured: Ray's start-up alone and a 1-frame `run` (process start + model load). The load
average is recorded before and after every mode: on a shared machine the figures are only as
quiet as the machine was. Writes batch_vs_sequential.json and .md into --out-dir.

    python benchmarks/batch_vs_sequential.py [--pose-model vitpose-s.onnx] [--max-frames N] \
        [--out-dir benchmarks/results/cpu-2core]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
CLIPS = ("sports2d_demo", "pose2sim_multiperson_cam01", "pose2sim_singleperson_cam01", "mmpose_demo")
MODES = ("sequential", "batch-2x1", "batch-1x2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose-model", help="ViTPose ONNX; default: ViTPose-S with random weights, exported once")
    parser.add_argument("--detector", default=str(SHARED / "models" / "yolox_nano_coco.onnx"))
    parser.add_argument("--max-frames", type=int, help="cap every clip (default: whole clips, 435 frames)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--out-dir", default="reports/batch_vs_sequential")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = [SHARED / "media" / f"{c}.mp4" for c in CLIPS]
    work = Path(tempfile.mkdtemp(prefix="posestream-bvs-"))
    try:
        pose_model = args.pose_model or _export_random_s(work)
        common = ["--detector", args.detector, "--pose-model", str(pose_model)]
        if args.max_frames:
            common += ["--max-frames", str(args.max_frames)]
        report = {"environment": _environment(), "clips": CLIPS, "max_frames": args.max_frames,
                  "pose_model": "ViTPose-S random weights (ONNX, fp32)" if not args.pose_model else str(pose_model),
                  "modes": {}}  # fmt: skip
        report["ray_start_s"] = _timed([sys.executable, "-c", RAY_START])["wall_s"]
        report["run_one_frame_s"] = _timed(_posestream("run", str(clips[0]), *common[:4], "--max-frames", "1",
                                                       "--out-json", str(work / "one-frame.jsonl"),
                                                       "--no-progress"))["wall_s"]  # fmt: skip
        for mode in args.modes:
            report["modes"][mode] = _mode(mode, clips, common, work / mode)
            print(f"{mode}: {json.dumps(report['modes'][mode])}", file=sys.stderr)
        _ratios(report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "batch_vs_sequential.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "batch_vs_sequential.md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


RAY_START = ("import time, ray; from posestream.batch.driver import start_local_ray; t = time.monotonic(); "
             "start_local_ray(2); ray.get(ray.remote(lambda: 1).remote()); print(time.monotonic() - t); "
             "ray.shutdown()")  # the way batch starts it  # fmt: skip


def _posestream(*argv: str) -> list[str]:
    return [sys.executable, "-m", "posestream", *argv]


def _timed(cmd: list[str]) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 2), "load_before": load_before, "load_after": os.getloadavg()[0]}


def _export_random_s(work: Path) -> Path:
    path = work / "vitpose-s-random.onnx"
    _timed(_posestream("export", "--variant", "s", "--weights", "none", "--out", str(path)))
    return path


def _frames(jsonl: Path) -> int:
    return sum(1 for _ in jsonl.open())


def _mode(mode: str, clips: list[Path], common: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True)
    if mode == "sequential":
        per_clip, frames = {}, 0
        load_before, t0 = os.getloadavg()[0], time.monotonic()
        for clip in clips:
            o = folder / clip.stem
            per_clip[clip.stem] = _timed(_posestream("run", str(clip), *common, "--out-video", f"{o}.mp4",
                                                     "--out-json", f"{o}.jsonl", "--out-csv", f"{o}.csv",
                                                     "--no-progress"))["wall_s"]  # fmt: skip
            frames += _frames(Path(f"{o}.jsonl"))
        wall = time.monotonic() - t0
        return {"wall_s": round(wall, 2), "frames": frames, "fps": round(frames / wall, 3),
                "load_before": load_before, "load_after": os.getloadavg()[0], "per_clip_wall_s": per_clip}  # fmt: skip
    workers, cpus = {"batch-2x1": (2, 1), "batch-1x2": (1, 2)}[mode]
    timing = _timed(_posestream("batch", *map(str, clips), "--out-dir", str(folder), *common,
                                "--outputs", "video,json,csv", "--workers", str(workers),
                                "--cpus-per-task", str(cpus), "--no-progress"))  # fmt: skip
    summary = json.loads((folder / "summary.json").read_text())
    frames = sum(r["frames"] for r in summary["videos"])
    assert all(r["status"] == "done" for r in summary["videos"]), summary
    task_s = sum(r["wall_s"] for r in summary["videos"])
    return {**timing, "frames": frames, "fps": round(frames / timing["wall_s"], 3),
            "task_wall_s_sum": round(task_s, 2), "batch_wall_s": summary["totals"]["wall_s"],
            "per_clip_wall_s": {r["name"]: r["wall_s"] for r in summary["videos"]}}  # fmt: skip


def _ratios(report: dict) -> None:
    seq = report["modes"].get("sequential")
    for mode, result in report["modes"].items():
        if seq and mode != "sequential":
            result["speedup_vs_sequential"] = round(seq["wall_s"] / result["wall_s"], 3)


def _environment() -> dict:
    import onnxruntime
    import ray

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "ray": ray.__version__,
            "load_average_at_start": os.getloadavg()}  # fmt: skip


def _markdown(report: dict) -> str:
    env = report["environment"]
    lines = ["# posestream batch vs run, one after another", "",
             f"{env['cpus']} CPUs, {env['platform']}, onnxruntime {env['onnxruntime']}, ray {env['ray']}; "
             f"load average at start {env['load_average_at_start'][0]:.1f}.",
             f"Clips: {', '.join(report['clips'])} (frame cap: {report['max_frames'] or 'none'}); "
             f"{report['pose_model']} + YOLOX-Nano; outputs: video, JSON Lines, CSV.", "",
             f"Ray start-up alone: {report['ray_start_s']:.1f} s. A 1-frame `run` (process start + model "
             f"load): {report['run_one_frame_s']:.1f} s.", "",
             "| mode | wall s | frames | fps | vs sequential | load before / after |",
             "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for mode, r in report["modes"].items():
        ratio = r.get("speedup_vs_sequential")
        lines.append(f"| {mode} | {r['wall_s']:.1f} | {r['frames']} | {r['fps']:.2f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}x'} | {r['load_before']:.1f} / {r['load_after']:.1f} |")  # fmt: skip
    lines += ["", "Per clip (s): " + "; ".join(
        f"{mode}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["per_clip_wall_s"].items())
        for mode, r in report["modes"].items())]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
