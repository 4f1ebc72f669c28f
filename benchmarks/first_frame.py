"""Launch -> first processed frame of `posestream run` with ONNX models, cold and with the compile cache.

    python benchmarks/first_frame.py --out benchmarks/results/cpu-2core/start

Each measurement is a fresh process: `posestream run CLIP --detector yolox --pose-model S.onnx
--max-frames N --out-json J`, timed from launch until the first JSON line is on disk (the writer
flushes each frame). "cold": an empty POSESTREAM_CACHE (OpenVINO compiles both models, N = 1);
"cached": the same cache again (compiled blobs imported, the ONNX files not parsed, N = 1);
"cached, 10-frame run": the same with N = 10, as a real run goes on: the graph decodes and detects
the next frames while the first one is posed, on the same cores, so its first frame comes later.
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


def first_frame_seconds(cmd: list[str], out_json: Path, env: dict) -> float:
    out_json.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while True:
        if out_json.is_file() and out_json.read_text().strip():
            seconds = time.monotonic() - t0
            break
        if proc.poll() is not None:
            raise SystemExit(f"posestream run exited {proc.returncode} before writing a frame:\n{proc.stderr.read()}")
        time.sleep(0.005)
    proc.wait()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="pose2sim_multiperson_cam01.mp4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core/start"))
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", "../shared")).resolve()
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="start-"))
    model = work / "vitpose-s.onnx"
    subprocess.run([str(bin_dir / "posestream"), "export", "--variant", "s", "--weights", "none", "--out", str(model)],
                   check=True, capture_output=True)  # fmt: skip
    cmd = [str(bin_dir / "posestream"), "run", str(shared / "media" / args.clip), "--detector",
           str(shared / "models" / "yolox_nano_coco.onnx"), "--pose-model", str(model), "--max-frames", "1",
           "--out-json", str(work / "o.jsonl"), "--no-progress"]  # fmt: skip
    longer = [*cmd[: cmd.index("--max-frames") + 1], "10", *cmd[cmd.index("--max-frames") + 2 :]]
    results = {"cold": [], "cached": [], "cached, 10-frame run": []}
    load = os.getloadavg()
    for _ in range(args.repeats):
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
        env = {**os.environ, "POSESTREAM_CACHE": str(cache)}
        results["cold"].append(round(first_frame_seconds(cmd, work / "o.jsonl", env), 3))
        results["cached"].append(round(first_frame_seconds(cmd, work / "o.jsonl", env), 3))
        results["cached, 10-frame run"].append(round(first_frame_seconds(longer, work / "o.jsonl", env), 3))
    report = {"command": " ".join(cmd[1:]).replace(str(work), "WORK"), "longer_run": "--max-frames 10", "load_average_start": [round(x, 2) for x in load],
              "load_average_end": [round(x, 2) for x in os.getloadavg()], "seconds": results,
              "median": {k: statistics.median(v) for k, v in results.items()}, "goal_s": 1.5}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "start.json").write_text(json.dumps(report, indent=2))
    md = (f"# Launch -> first processed frame\n\n`posestream {report['command']}`; load average "
          f"{report['load_average_start']} -> {report['load_average_end']}.\n\n| cache | runs (s) | median (s) |\n|---|---|---:|\n"
          + "".join(f"| {k} | {v} | {report['median'][k]:.2f} |\n" for k, v in results.items())
          + f"\nGoal: <= {report['goal_s']} s with the compile cache. The 10-frame run decodes and detects the next "
            "frames while the first is posed.\n")  # fmt: skip
    (args.out / "start.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
