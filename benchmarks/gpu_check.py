"""The benchmark half of ``benchmarks/gpu_check.sh``: short, budgeted, GPU figures in JSON + markdown.

Parts, in this order (each part is skipped, with its reason, when the GPU or the time is missing):

1. **device**: torch, CUDA, GPU name; a bf16 8192^3 matmul measures the ceiling (TFLOP/s).
2. **model-only**: ViTPose S/B/L/H (random weights, bf16) at batch 1/16/64/256, input already on the
   GPU, one CUDA graph per batch: crops/s, ms per call, and the share of the measured ceiling
   (FLOPs per crop counted by ``torch.utils.flop_counter``), eager + graphs for all four.
3. **end-to-end**: the multi-person clip looped (packets remuxed, no re-encode) to >= 2,000 frames,
   ViTPose-B bf16, through ``posestream.bench.end_to_end``: the sequential per-crop loop (the peers'
   way: OpenCV warp, one model call per person, numpy decode), the graph (device pre/post-
   processing, cross-frame batching, compile + CUDA graphs) and each stage alone (names the stage
   that limits the graph). Same process, same clip, one after the other. No video is encoded (libx264
   on the CPU would be the limit and say nothing about the GPU path).
4. **model-only compiled**: ``torch.compile`` + graphs for B (the goal: >= 8,000 crops/s), then S, L
   and H while the budget lasts.

Without CUDA (a developer machine, CI) parts 1-2 record why they were skipped, and part 3 runs a
few frames of ViTPose-S on the CPU through the same code (device estimator and cross-frame
batching forced on) so the script is proven end to end; those figures are labelled as a CPU smoke
run and mean nothing about a GPU.

    python benchmarks/gpu_check.py --out-dir $OUT --budget-s 420
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("gpu_check")

VARIANTS = ("s", "b", "l", "h")
BATCHES = (1, 16, 64, 256)
CLIP = "media/pose2sim_multiperson_cam01.mp4"
DETECTOR = "models/yolox_nano_coco.onnx"
GOALS = {"model_only_b_crops_per_s": 8000, "graph_speedup_vs_sequential": 3.0}


class Budget:
    """Seconds left of the whole check; parts ask before they start."""

    def __init__(self, seconds: float) -> None:
        self.t_end = time.monotonic() + seconds

    def left(self) -> float:
        return self.t_end - time.monotonic()


# ------------------------------------------------------------------------------------------ helpers
def shared_dir() -> Path:
    env = os.environ.get("POSESTREAM_SHARED")
    for candidate in ([Path(env)] if env else []) + [Path(".gpu/shared"), Path("../shared")]:
        if (candidate / CLIP).is_file():
            return candidate
    raise SystemExit(f"gpu_check: {CLIP} not found (set POSESTREAM_SHARED or run benchmarks/gpu_prepare.sh)")


def loop_clip(source: Path, target: Path, min_frames: int) -> int:
    """Write ``source`` repeated until it has >= ``min_frames`` frames (packets remuxed, timestamps
    shifted, nothing re-encoded). Returns the frame count."""
    import av

    with av.open(str(source)) as probe:
        stream = probe.streams.video[0]
        packets = [p for p in probe.demux(stream) if p.size and p.pts is not None]
        per_loop = len(packets)
        first = min(p.pts for p in packets)
        step = max(p.duration or 0 for p in packets) or 1
        span = max(p.pts for p in packets) - first + step  # one loop in stream time-base units
    loops = math.ceil(min_frames / per_loop)
    with av.open(str(target), "w") as out:
        with av.open(str(source)) as first_in:
            out_stream = out.add_stream_from_template(first_in.streams.video[0])
        for k in range(loops):
            with av.open(str(source)) as inp:  # muxing consumes packets: demux afresh for each loop
                for packet in inp.demux(inp.streams.video[0]):
                    if not packet.size or packet.pts is None:
                        continue
                    packet.pts += k * span
                    packet.dts = None if packet.dts is None else packet.dts + k * span
                    packet.stream = out_stream
                    out.mux(packet)
    return loops * per_loop


def device_facts() -> dict:
    import torch

    facts = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts |= {
            "gpu": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    return facts


def matmul_tflops() -> float:
    """bf16 8192^3 matmul TFLOP/s, mean of 10 after 3 warm-ups: the ceiling model figures are read against."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    end.synchronize()
    return 10 * 2 * 8192**3 / (start.elapsed_time(end) / 1e3) / 1e12


def flops_per_crop(model, device: str) -> float:
    """Forward FLOPs of one 256x192 crop (matmuls and convolutions, 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, 256, 192, device=device, dtype=next(model.parameters()).dtype)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------------------ parts
def model_only(budget: Budget, ceiling_tflops: float, compiled: bool, variants, skipped: list) -> list[dict]:
    import torch

    from posestream.models.vitpose import build_vitpose
    from posestream.runtime.torch import TorchPoseBackend

    cells = []
    for variant in variants:
        what = (
            f"model-only ViTPose-{variant.upper()} bf16 {'compiled' if compiled else 'eager'} + CUDA graphs"
        )
        needed = 90 if compiled else 25
        if budget.left() < needed:
            skipped.append(
                {"what": what, "reason": f"time budget ({budget.left():.0f} s left, ~{needed} s needed)"}
            )
            continue
        torch.manual_seed(0)
        model = build_vitpose(variant).eval()
        t0 = time.perf_counter()
        backend = TorchPoseBackend(
            model, device="cuda", dtype="bf16", compile=compiled, cuda_graphs=True, buckets=BATCHES
        )
        warm_s = backend.warm_up(BATCHES)
        setup_s = time.perf_counter() - t0
        flops = flops_per_crop(backend.model, "cuda")  # the eager module, bf16 on the GPU
        for batch in BATCHES:
            x = torch.randn(batch, 3, 256, 192, device="cuda").to(torch.bfloat16)
            with torch.inference_mode():
                seconds, calls = _time_forward(backend, x)
            crops_per_s = batch * calls / seconds
            cell = {
                "variant": variant,
                "compiled": backend.runner.compiled,
                "cuda_graphs": backend.runner.cuda_graphs,
                "batch": batch,
                "calls": calls,
                "ms_per_call": round(1e3 * seconds / calls, 3),
                "crops_per_s": round(crops_per_s, 1),
                "gflop_per_crop": round(flops / 1e9, 2),
                "tflops": round(crops_per_s * flops / 1e12, 1),
                "share_of_ceiling": round(crops_per_s * flops / 1e12 / ceiling_tflops, 3),
                "warm_up_s": round(warm_s, 1),
                "setup_s": round(setup_s, 1),
            }
            cells.append(cell)
            log.info(
                "%s batch %d: %.0f crops/s (%.2f ms/call, %.0f%% of %.0f TFLOP/s)",
                what,
                batch,
                crops_per_s,
                cell["ms_per_call"],
                100 * cell["share_of_ceiling"],
                ceiling_tflops,
            )
        del backend, model
        gc.collect()
        torch.cuda.empty_cache()
    return cells


def _time_forward(backend, x, min_seconds: float = 0.4) -> tuple[float, int]:
    """Seconds for ``calls`` back-to-back forwards (CUDA events; the GPU is synchronised at the end)."""
    import torch

    for _ in range(3):
        backend.forward(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    backend.forward(x)
    torch.cuda.synchronize()
    one = max(time.perf_counter() - t0, 1e-5)
    calls = int(min(max(5, min_seconds / one), 2000))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        backend.forward(x)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3, calls


def end_to_end(
    budget: Budget, clip: Path, detector: Path, frames: int, gpu: bool, skipped: list
) -> dict | None:
    from posestream.bench.backends import BACKENDS
    from posestream.bench.end_to_end import E2ESettings, first_frame, run_end_to_end
    from posestream.bench.models import variant_sources

    what = "end-to-end ViTPose-B graph vs sequential" if gpu else "end-to-end CPU smoke (ViTPose-S)"
    needed = 120 if gpu else 20
    if budget.left() < needed:
        skipped.append(
            {"what": what, "reason": f"time budget ({budget.left():.0f} s left, ~{needed} s needed)"}
        )
        return None
    spec = BACKENDS["torch-cuda-bf16" if gpu else "torch-cpu-fp32"]
    source = variant_sources(["b" if gpu else "s"], "none", Path("/tmp/posestream-gpu-check"))[0]
    overrides = (
        ()
        if gpu
        else (("pose.device_pipeline", "true"), ("pose.cross_frame", "true"), ("pose.cross_frame_crops", 8))
    )
    threads = max(1, min(8, (os.cpu_count() or 2) // 2))
    settings = E2ESettings(clip, detector, frames, threads, None, pose_overrides=overrides)
    t0 = time.perf_counter()
    result = run_end_to_end(spec, source, settings, first_frame(clip))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["detector_threads"] = threads
    return result


# ------------------------------------------------------------------------------------------ report
def markdown(report: dict) -> str:
    lines = ["# GPU check (issue 15)", ""]
    dev = report["device"]
    lines.append(
        f"- created {report['created']}; budget {report['budget_s']:.0f} s, took {report['seconds']:.0f} s"
    )
    lines.append(
        f"- torch {dev['torch']}, Python {dev['python']}, {dev['cpu_count']} CPUs, load average "
        f"{dev['load_average']}"
    )
    if dev["cuda_available"]:
        lines.append(
            f"- GPU {dev['gpu']} (compute {dev['compute_capability']}, {dev['gpu_memory_gib']} GiB, "
            f"CUDA {dev['cuda']}); bf16 matmul ceiling {report['ceiling_tflops']} TFLOP/s"
        )
    else:
        lines.append(
            "- **no CUDA GPU here: the GPU parts were skipped** (reasons below); the end-to-end row is a "
            "CPU smoke run of the same code path, not a GPU figure"
        )
    lines.append(f"- GPU-marked tests: exit code {report['gpu_tests_rc']} (see gpu_tests.log)")
    lines.append("- weights: RANDOM (timings are real, keypoints meaningless)")
    cells = report["model_only"]
    if cells:
        lines += [
            "",
            "## Model-only, bf16, input on the GPU (crops/s)",
            "",
            "| variant | path | batch | crops/s | ms/call | GFLOP/crop | TFLOP/s | share of ceiling |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in cells:
            path = ("compiled" if c["compiled"] else "eager") + (" + graphs" if c["cuda_graphs"] else "")
            lines.append(
                f"| {c['variant'].upper()} | {path} | {c['batch']} | {c['crops_per_s']:,.0f} | "
                f"{c['ms_per_call']} | {c['gflop_per_crop']} | {c['tflops']} | "
                f"{100 * c['share_of_ceiling']:.0f}% |"
            )
        best_b = max((c["crops_per_s"] for c in cells if c["variant"] == "b"), default=None)
        if best_b is not None:
            goal = GOALS["model_only_b_crops_per_s"]
            lines += [
                "",
                f"ViTPose-B best: **{best_b:,.0f} crops/s** (goal >= {goal:,}: "
                f"{'met' if best_b >= goal else 'NOT met'})",
            ]
    e2e = report["end_to_end"]
    if e2e:
        graph, seq, alone = e2e["graph"], e2e["sequential"], e2e["stage_alone"]
        lines += [
            "",
            f"## End to end: {e2e['frames']} frames, {e2e['people_per_frame']} people/frame, "
            f"{e2e['backend']}, ViTPose-{e2e['variant'].upper()}",
            "",
            "| pass | fps | wall s | model calls | pose path |",
            "|---|---:|---:|---:|---|",
        ]
        for name, run in (
            ("sequential per-crop loop", seq),
            ("graph", graph),
            ("stages alone, in turn", alone),
        ):
            path = run.get("pose_path", {})
            cross = path.get("cross_frame")
            desc = f"{path.get('estimator', '?')}" + (
                f", cross-frame <= {cross['max_crops']} crops" if cross else ""
            )
            lines.append(
                f"| {name} | {run['fps']:.1f} | {run['wall_s']:.1f} | {run['model_calls']} | {desc} |"
            )
        slowest = e2e["slowest_stage"]
        lines += [
            "",
            f"Graph speed-up over the sequential loop: **x{e2e['speedup_vs_sequential']:.2f}** "
            f"(goal >= x{GOALS['graph_speedup_vs_sequential']:.0f}). Limiting stage (slowest alone): "
            f"**{slowest['name']}** {slowest['mean_ms']:.2f} ms/frame = {slowest['fps']:.0f} fps; graph "
            f"efficiency {100 * e2e['efficiency']:.0f}%.",
            "",
            "| stage | alone: mean ms/frame |",
            "|---|---:|",
        ]
        lines += [f"| {s['name']} | {s['mean_ms']:.2f} |" for s in alone["stages"]]
    if report["skipped"]:
        lines += ["", "## Skipped", ""] + [f"- {s['what']}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="stop starting parts after this (default 420)"
    )
    parser.add_argument("--frames", type=int, default=2000, help="end-to-end frames on a GPU (default 2000)")
    parser.add_argument(
        "--tests-rc", type=int, default=-1, help="exit code of the GPU-marked tests, for the report"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout
    )
    t_start = time.monotonic()
    budget = Budget(args.budget_s)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.is_available()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    skipped: list[dict] = []
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "budget_s": args.budget_s,
        "device": device_facts(),
        "gpu_tests_rc": args.tests_rc,
        "goals": GOALS,
        "weights": "random",
        "ceiling_tflops": None,
        "model_only": [],
        "end_to_end": None,
        "skipped": skipped,
    }
    try:
        if gpu:
            report["ceiling_tflops"] = round(matmul_tflops(), 1)
            log.info("bf16 matmul ceiling: %.0f TFLOP/s", report["ceiling_tflops"])
            ceiling = report["ceiling_tflops"]
            report["model_only"] += model_only(budget, ceiling, False, VARIANTS, skipped)
        else:
            reason = f"no CUDA GPU (torch {torch.__version__} sees none)"
            skipped += [
                {"what": "bf16 matmul ceiling", "reason": reason},
                {"what": "model-only S/B/L/H bf16 at batch 1/16/64/256", "reason": reason},
                {"what": "end-to-end ViTPose-B on the GPU (2,000+ frames)", "reason": reason},
            ]
        shared = shared_dir()
        frames = args.frames if gpu else 4
        clip = shared / CLIP
        if gpu:
            clip = Path("/tmp/posestream-gpu-check-looped.mp4")
            count = loop_clip(shared / CLIP, clip, frames)
            log.info("looped %s to %d frames in %s", CLIP, count, clip)
        report["end_to_end"] = end_to_end(budget, clip, shared / DETECTOR, frames, gpu, skipped)
        if gpu:  # compiled last: the end-to-end run has compiled B already (Inductor's cache is warm)
            for variant in ("b", "s", "l", "h"):
                report["model_only"] += model_only(
                    budget, report["ceiling_tflops"], True, (variant,), skipped
                )
    finally:
        report["seconds"] = round(time.monotonic() - t_start, 1)
        (args.out_dir / "gpu_check.json").write_text(
            json.dumps(report, indent=2, default=str), encoding="utf-8"
        )
        text = markdown(report)
        (args.out_dir / "gpu_check.md").write_text(text, encoding="utf-8")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
