"""Soak test: the whole pipeline on a looping clip for N minutes; is memory flat and fps steady?

    python benchmarks/soak.py --minutes 20            # the full run (make soak does the same)
    python benchmarks/soak.py --minutes 2 --out-dir /tmp/soak   # a quick check

The pipeline is what `posestream run` builds: decode -> detect (YOLOX-Nano) -> track -> pose
(ViTPose-S ONNX; exported with random weights unless --pose-model is given) -> smooth -> render ->
video + JSON sinks (written to a temporary folder, deleted at the end). The clip loops: when it
ends it is opened again, with frame numbers and times continuing, so every stage sees one endless
stream. Every 10 s the process's RSS, open file descriptors, threads and the fps over the last
interval are sampled (from /proc and the graph's metrics).

Verdict: memory growth after warm-up = (mean RSS of the last quarter of the samples - mean RSS of
the first quarter after warm-up) / the latter; the goal is < 5%. fps drift = the same comparison
of fps. Writes soak.json, soak.md and soak.png to --out-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
SAMPLE_S = 10.0
GROWTH_GOAL = 0.05


class LoopingReader:
    """A ``FrameReader`` that opens the clip again at its end: indices and pts keep increasing."""

    def __init__(self, first, spec: str) -> None:
        self.spec = spec
        self.reader = first
        self.info = first.info
        self.loops = 0
        self._index0, self._pts0 = 0, 0.0  # added to the frames of the current pass
        self._next_index, self._next_pts = 0, 0.0

    def read(self):
        from posestream.io.video import open_source
        from posestream.types import Frame

        frame = self.reader.read()
        if frame is None:  # the end of one pass: open the clip again, carry on counting
            self.reader.close()
            self.reader = open_source(self.spec)
            self.loops += 1
            self._index0, self._pts0 = self._next_index, self._next_pts
            frame = self.reader.read()
        frame = Frame(frame.index + self._index0, frame.pts + self._pts0, frame.t_capture, frame.image)
        self._next_index = frame.index + 1
        self._next_pts = frame.pts + 1.0 / (self.info.fps or 30.0)
        return frame

    def describe(self) -> list[str]:
        return [f"source looped {self.loops} times"]

    def close(self) -> None:
        self.reader.close()


def _proc_status() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir("/proc/self/fd")),
    }


def _export_random_s(folder: Path) -> Path:
    """ViTPose-S with random weights, exported in a subprocess (keeps torch out of this process)."""
    path = folder / "vitpose-s-random.onnx"
    subprocess.run([sys.executable, "-m", "posestream", "export", "--variant", "s", "--weights", "none",
                    "--out", str(path)], check=True, capture_output=True)  # fmt: skip
    return path


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _verdict(samples: list[dict], warmup_s: float) -> dict:
    after = [s for s in samples if s["t_s"] >= warmup_s]
    if len(after) < 4:
        return {"enough_samples": False, "samples_after_warmup": len(after)}
    q = max(1, len(after) // 4)
    first, last = after[:q], after[-q:]
    rss0, rss1 = _mean([s["rss_mib"] for s in first]), _mean([s["rss_mib"] for s in last])
    fps0, fps1 = _mean([s["fps"] for s in first]), _mean([s["fps"] for s in last])
    return {
        "enough_samples": True,
        "samples_after_warmup": len(after),
        "rss_first_quarter_mib": round(rss0, 1),
        "rss_last_quarter_mib": round(rss1, 1),
        "rss_growth": round((rss1 - rss0) / rss0, 4),
        "rss_max_after_warmup_mib": round(max(s["rss_mib"] for s in after), 1),
        "fps_first_quarter": round(fps0, 2),
        "fps_last_quarter": round(fps1, 2),
        "fps_drift": round((fps1 - fps0) / fps0, 4) if fps0 else None,
        "fds_first_last": [first[0]["fds"], last[-1]["fds"]],
        "threads_first_last": [first[0]["threads"], last[-1]["threads"]],
        "memory_flat": (rss1 - rss0) / rss0 < GROWTH_GOAL,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--warmup-minutes", type=float, default=None, help="default: 10%% of the run, at least 0.5")
    parser.add_argument("--clip", default=str(SHARED / "media" / "pose2sim_multiperson_cam01.mp4"))
    parser.add_argument("--detector", default=str(SHARED / "models" / "yolox_nano_coco.onnx"))
    parser.add_argument("--pose-model", help="ViTPose ONNX; default: ViTPose-S with random weights")
    parser.add_argument("--no-outputs", action="store_true", help="no video/JSON sinks")
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results" / "cpu-2core" / "soak"))
    args = parser.parse_args()
    warmup_s = 60 * (args.warmup_minutes if args.warmup_minutes is not None else max(0.5, args.minutes / 10))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    from posestream.app import build_pipeline
    from posestream.bench.environment import load_average
    from posestream.config import load_config

    with tempfile.TemporaryDirectory(prefix="posestream-soak-") as tmp:
        tmp = Path(tmp)
        pose_model = Path(args.pose_model) if args.pose_model else _export_random_s(tmp)
        # A long shutdown timeout: the soak ends by a stop, and a pose call on a busy machine may
        # take seconds; it is waited for rather than abandoned inside onnxruntime.
        overrides = [f"detector.model={args.detector}", f"pose.model={pose_model}", "pipeline.shutdown_timeout_s=120"]
        if not args.no_outputs:
            overrides += [f"output.video={tmp / 'soak.mp4'}", f"output.json={tmp / 'soak.jsonl'}"]
        pipeline = build_pipeline(args.clip, load_config(None, overrides))
        decode = pipeline.graph.source
        decode.reader = LoopingReader(decode.reader, args.clip)
        graph = pipeline.graph
        samples: list[dict] = []
        load_start = load_average()
        t0 = time.monotonic()
        state = {"t": t0, "frames": 0}

        def sample(g) -> None:
            now = time.monotonic()
            if now - state["t"] < SAMPLE_S or state.get("stopping"):  # not while the stages wind down
                return
            frames = g.metrics[-1].frames_in
            row = {"t_s": round(now - t0, 1), "frames": frames,
                   "fps": round((frames - state["frames"]) / (now - state["t"]), 3), **_proc_status(),
                   "load_1m": (load_average() or [None])[0]}  # fmt: skip
            row["rss_mib"] = round(row["rss_mib"], 1)
            samples.append(row)
            state.update(t=now, frames=frames)
            print(json.dumps(row), flush=True)

        def stop() -> None:
            state["stopping"] = True
            graph.request_stop()

        timer = threading.Timer(60 * args.minutes, stop)
        timer.start()
        try:
            result = graph.run(on_tick=sample, tick_s=0.5)
        finally:
            timer.cancel()
        wall_s = time.monotonic() - t0
        outputs = pipeline.describe_outputs()

    from posestream.bench.environment import describe_environment

    verdict = _verdict(samples, warmup_s)
    report = {
        "minutes": args.minutes, "warmup_s": warmup_s, "wall_s": round(wall_s, 1), "clip": args.clip,
        "detector": args.detector, "pose_model": args.pose_model or "ViTPose-S, random weights (exported)",
        "outputs": not args.no_outputs, "frames": result.stages[-1].frames_in, "loops": decode.reader.loops,
        "load_average_start": load_start, "load_average_end": load_average(), "verdict": verdict,
        "stages": [s.as_dict() for s in result.stages], "samples": samples, "summary_lines": outputs,
        "environment": describe_environment(),
    }  # fmt: skip
    (out_dir / "soak.json").write_text(json.dumps(report, indent=2))
    _plot(samples, warmup_s, out_dir / "soak.png")
    md = _markdown(report)
    (out_dir / "soak.md").write_text(md)
    print(md)
    return 0


def _markdown(r: dict) -> str:
    v = r["verdict"]
    lines = ["# Soak: memory and fps over a long run", "",
             f"{r['minutes']:g} min (wall {r['wall_s']:.0f} s) of `{Path(r['clip']).name}` looped {r['loops']} times, "
             f"{r['frames']} frames; detector `{Path(r['detector']).name}`, pose {r['pose_model']}; "
             f"sinks: {'video + JSON' if r['outputs'] else 'none'}. Load average at start {r['load_average_start']}, "
             f"at end {r['load_average_end']} ({r['environment']['usable_cores']} cores, {r['environment']['cpu']}).", ""]  # fmt: skip
    if v.get("enough_samples"):
        flat = "yes" if v["memory_flat"] else "NO"
        lines += ["| after warm-up (%.0f s) | first quarter | last quarter | change |" % r["warmup_s"],
                  "|---|---:|---:|---:|",
                  f"| RSS (MiB) | {v['rss_first_quarter_mib']} | {v['rss_last_quarter_mib']} | {v['rss_growth']:+.2%} |",
                  f"| fps | {v['fps_first_quarter']} | {v['fps_last_quarter']} | {v['fps_drift']:+.2%} |",
                  f"| open fds | {v['fds_first_last'][0]} | {v['fds_first_last'][1]} | |",
                  f"| threads | {v['threads_first_last'][0]} | {v['threads_first_last'][1]} | |", "",
                  f"Memory flat (growth < {GROWTH_GOAL:.0%}): **{flat}**; max RSS after warm-up "
                  f"{v['rss_max_after_warmup_mib']} MiB."]  # fmt: skip
    else:
        lines += [f"Too few samples after warm-up for a verdict ({v.get('samples_after_warmup')})."]
    lines += ["", "| t (s) | frames | fps | RSS (MiB) | fds | threads | load 1 min |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['t_s']} | {s['frames']} | {s['fps']:.2f} | {s['rss_mib']} | {s['fds']} | {s['threads']} | "
              f"{s['load_1m']} |" for s in r["samples"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def _plot(samples: list[dict], warmup_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not samples:
        return
    t = [s["t_s"] / 60 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    ax1.plot(t, [s["rss_mib"] for s in samples])
    ax1.set_ylabel("RSS (MiB)")
    ax2.plot(t, [s["fps"] for s in samples])
    ax2.set_ylabel("fps")
    ax2.set_xlabel("minutes")
    for ax in (ax1, ax2):
        ax.axvline(warmup_s / 60, color="grey", linestyle="--", linewidth=1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
