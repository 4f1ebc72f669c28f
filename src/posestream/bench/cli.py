"""``posestream bench``: model-only crops/s and end-to-end fps per ViTPose variant and backend.

    posestream bench                                   # ViTPose-S and -B, every backend present
    posestream bench --variants s b --batch-sizes 1 4 8 --frames 30
    posestream bench --backends ort-cpu torch-cpu-bf16 --skip-e2e
    posestream bench --pose-model vitpose-b-coco.onnx  # time given ONNX files instead of exporting

Writes ``bench.json``, ``bench.md`` and ``bench.png`` to ``--out-dir`` and prints the markdown.
Without ``--weights`` the models have random weights: timings are real, keypoints are noise, and
every output says so.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from posestream.bench.backends import (
    BACKENDS,
    BackendSpec,
    check_backend_names,
    default_e2e_backends,
    machine_capabilities,
    open_backend,
    select_backends,
)
from posestream.errors import InputError

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

DEFAULT_VARIANTS = ("s", "b")
DEFAULT_CLIP = "media/pose2sim_multiperson_cam01.mp4"  # under the shared data folder
DEFAULT_DETECTOR = "models/yolox_nano_coco.onnx"
SCHEMA_VERSION = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` flags to ``parser`` (choices are checked in ``run``: InputError, exit 2)."""
    names = ", ".join(BACKENDS)
    parser.add_argument("--variants", nargs="+", metavar="V", help="ViTPose sizes: s b l h (default: s b)")
    parser.add_argument("--backends", nargs="+", metavar="NAME",
                        help=f"backends to time (default: every one present): {names}")  # fmt: skip
    parser.add_argument("--e2e-backends", nargs="+", metavar="NAME",
                        help="backends for the end-to-end runs (default: the ort-* backends selected, "
                             "plus torch-cuda-* ones when CUDA is there)")  # fmt: skip
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 8], metavar="B",
                        help="model-only batch sizes (default: 1 4 8)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="timed seconds per model-only cell, at least 3 calls (default 3)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before each cell (default 1)")
    shared = "$POSESTREAM_SHARED"
    parser.add_argument("--clip", help=f"video for end-to-end runs (default {shared}/{DEFAULT_CLIP})")
    parser.add_argument("--detector", help=f"person detector ONNX (default {shared}/{DEFAULT_DETECTOR})")
    parser.add_argument("--frames", type=int, default=30, help="clip frames per end-to-end pass (default 30)")
    parser.add_argument("--skip-e2e", action="store_true", help="model-only figures only")
    parser.add_argument("--skip-model", action="store_true", help="end-to-end figures only")
    parser.add_argument("--no-video", action="store_true", help="end-to-end runs without render and video")
    parser.add_argument("--pose-model", action="append", metavar="PATH",
                        help="time this ONNX file instead of exporting --variants (repeatable)")  # fmt: skip
    parser.add_argument("--weights", default="none", metavar="none|PATH",
                        help="checkpoint for the PyTorch models and exports (default none: random)")
    parser.add_argument("--threads", type=int, help="intra-op threads of the models (default: usable cores)")
    parser.add_argument("--out-dir", type=Path, default=Path("reports/bench"), help="default reports/bench")


def run(args: argparse.Namespace) -> int:
    """Run the bench as ``args`` say, write the reports, print the markdown. Returns 0."""
    from posestream.bench.end_to_end import E2ESettings
    from posestream.bench.environment import describe_environment, load_average
    from posestream.bench.models import file_sources, variant_sources
    from posestream.bench.report import DEFINITIONS, write_reports

    _validate(args)
    threads = args.threads or _usable_cores()  # model-only: the model alone gets every core
    caps = machine_capabilities()
    selected, unavailable = select_backends(args.backends, caps)
    skipped = [{"what": f"backend {name}", "reason": reason} for name, reason in unavailable.items()]
    e2e_specs: list[BackendSpec] = []
    settings = None
    if not args.skip_e2e:
        clip, detector = _shared_file(args.clip, DEFAULT_CLIP, "--clip"), _shared_file(
            args.detector, DEFAULT_DETECTOR, "--detector"
        )
        videos = None if args.no_video else args.out_dir / "videos"
        settings = E2ESettings(clip, detector, args.frames, args.threads, videos)  # None: the run's budget
        if args.e2e_backends:
            names = check_backend_names(args.e2e_backends, "--e2e-backends")
            e2e_specs, missing = select_backends(names, caps)
            skipped += [{"what": f"end-to-end on {n}", "reason": r} for n, r in missing.items()]
        else:
            e2e_specs = default_e2e_backends(selected)
    cache = args.out_dir / "cache"
    if args.pose_model:
        sources = file_sources(args.pose_model, args.weights, cache)
    else:
        sources = variant_sources(args.variants or list(DEFAULT_VARIANTS), args.weights, cache)
    if any(s.torch_random for s in sources) and not args.pose_model:
        print("posestream bench: WARNING: RANDOM WEIGHTS (no checkpoint given): timings are real, "
              "keypoints are meaningless", file=sys.stderr)  # fmt: skip

    load_start = load_average()
    t_start = time.monotonic()
    torch_threads = _set_torch_threads(threads)
    try:
        cells = [] if args.skip_model else _model_only(sources, selected, args, threads, skipped)
        runs = [] if settings is None else _end_to_end(sources, e2e_specs, settings, skipped)
    finally:
        _set_torch_threads(torch_threads)

    random_flags = [c["random_weights"] for c in cells] + [r["random_weights"] for r in runs]
    random = any(random_flags) if random_flags else any(s.torch_random for s in sources)
    report = {
        "schema": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": _command(args, threads),
        "weights": {
            "random": random,
            "source": args.weights if not args.pose_model else "given ONNX files (+ --weights for PyTorch)",
            "note": "RANDOM WEIGHTS: timings are valid, keypoints are meaningless."
            if random
            else "trained weights were loaded.",
        },
        "environment": describe_environment(),
        "load_average": {"start": load_start, "end": load_average()},
        "settings": {
            "threads": threads,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "batch_sizes": args.batch_sizes,
            "frames": args.frames,
            "clip": str(settings.clip) if settings else None,
            "detector": str(settings.detector) if settings else None,
            "video": bool(settings and settings.video_dir),
            "models": [
                {"label": s.label, "variant": s.variant, "onnx": str(s._onnx or s.given_onnx or ""),
                 "export_seconds": s.export_seconds, "onnx_reused_from_cache": s.onnx_reused,
                 "torch_weights": str(s.weights) if s.weights else "random"}
                for s in sources
            ],  # fmt: skip
        },
        "definitions": DEFINITIONS,
        "model_only": {"cells": cells},
        "end_to_end": {"runs": runs},
        "skipped": skipped,
        "bench_seconds": round(time.monotonic() - t_start, 1),
    }
    json_path, md_path, png_path = write_reports(report, args.out_dir)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path}, {md_path}" + (f", {png_path}" if png_path else ""), file=sys.stderr)
    if random:
        print("posestream bench: RANDOM WEIGHTS were timed (keypoints meaningless)", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ steps
def _model_only(sources, specs: list[BackendSpec], args, threads: int, skipped: list) -> list[dict]:
    from posestream.bench.model_only import make_batch, time_calls

    cells = []
    for source in sources:
        for spec in specs:
            what = f"model-only {source.label} on {spec.name}"
            if spec.engine == "torch" and (reason := source.torch_unavailable()):
                skipped.append({"what": what, "reason": reason})
                continue
            calibration = None
            if spec.dtype == "int8":  # quantised once per model, on person crops of train_mini
                folder = _shared_dir() / "coco" / "train_mini"
                if not folder.is_dir():
                    skipped.append({"what": what, "reason": f"int8 needs calibration crops: {folder} not found"})
                    continue
                from posestream.evaluation.calibration import pose_calibration

                calibration = pose_calibration(folder)
            try:
                backend = open_backend(spec, source, threads=threads, calibration=calibration)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - one backend failing to open must not stop the others
                _failed(skipped, what, exc)
                continue
            granted = list(getattr(backend, "providers", ()) or [backend.name])
            if spec.provider is not None and granted[0] != spec.provider:
                reason = f"requested {spec.provider}, granted {', '.join(granted)}"
                skipped.append({"what": what, "reason": reason})
                continue
            for size in args.batch_sizes:
                cell = {"model": source.label, "variant": source.variant, "backend": spec.name,
                        "granted": granted, "batch": size,
                        "random_weights": bool(backend.random_weights)}  # fmt: skip
                try:
                    times = time_calls(backend, make_batch(size, backend.input_size_hw), seconds=args.seconds,
                                       warmup=args.warmup)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - e.g. out of GPU memory at a large batch: go on
                    _failed(skipped, f"{what} batch {size}", exc)
                    cell |= {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                    cells.append(cell)
                    continue
                cell |= {"status": "ok", **times.as_dict()}
                cells.append(cell)
                _progress(f"[model-only] {source.label:>4} {spec.name:<16} batch {size:>3}: "
                          f"{times.crops_per_s:8.2f} crops/s  (mean {times.mean_ms:.1f} ms, "
                          f"p50 {times.p50_ms:.1f}, p95 {times.p95_ms:.1f}, {times.calls} calls)")
            del backend
            _release_memory(spec)
    return cells


def _end_to_end(sources, specs: list[BackendSpec], settings, skipped: list) -> list[dict]:
    from posestream.bench.end_to_end import BackendNotGranted, first_frame, run_end_to_end

    frame0 = first_frame(settings.clip)
    runs = []
    for source in sources:
        for spec in specs:
            what = f"end-to-end {source.label} on {spec.name}"
            if spec.engine == "torch" and (reason := source.torch_unavailable()):
                skipped.append({"what": what, "reason": reason})
                continue
            try:
                result = run_end_to_end(spec, source, settings, frame0)
            except BackendNotGranted as exc:
                skipped.append({"what": what, "reason": str(exc)})
                continue
            finally:
                _release_memory(spec)
            runs.append(result)
            graph, seq, slowest = result["graph"], result["sequential"], result["slowest_stage"]
            _progress(f"[end-to-end] {source.label:>4} {spec.name:<16}: graph {graph['fps']:.2f} fps, "
                      f"sequential {seq['fps']:.2f} fps (x{result['speedup_vs_sequential']:.2f}), "
                      f"efficiency {result['efficiency']:.0%} (slowest alone: {slowest['name']} "
                      f"{slowest['mean_ms']:.0f} ms)")  # fmt: skip
    return runs


# ------------------------------------------------------------------------------------------ helpers
def _validate(args: argparse.Namespace) -> None:
    from posestream.models.vitpose import VARIANTS

    if args.skip_e2e and args.skip_model:
        raise InputError("--skip-e2e and --skip-model together leave nothing to measure")
    if args.variants and args.pose_model:
        raise InputError("give either --variants (exported here) or --pose-model files, not both")
    for v in args.variants or ():
        if v.lower() not in VARIANTS:
            raise InputError(f"--variants: unknown variant {v!r}; expected some of {', '.join(VARIANTS)}")
    if args.variants:
        args.variants = list(dict.fromkeys(v.lower() for v in args.variants))
    if args.backends:
        check_backend_names(args.backends, "--backends")
    if args.e2e_backends:
        check_backend_names(args.e2e_backends, "--e2e-backends")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        raise InputError(f"--batch-sizes: expected positive integers, got {args.batch_sizes}")
    args.batch_sizes = sorted(set(args.batch_sizes))
    if not args.seconds > 0:
        raise InputError(f"--seconds: expected a positive number, got {args.seconds}")
    if args.warmup < 0:
        raise InputError(f"--warmup: expected 0 or more, got {args.warmup}")
    if args.frames < 1:
        raise InputError(f"--frames: expected a positive count, got {args.frames}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads: expected a positive count, got {args.threads}")


def _shared_dir() -> Path:
    """$POSESTREAM_SHARED, else ../shared from the working directory, else beside the checkout."""
    env = os.environ.get("POSESTREAM_SHARED")
    if env:
        return Path(env)
    here = Path("../shared")
    if here.is_dir():
        return here
    from posestream.bench.environment import REPO

    return REPO.parent / "shared"


def _shared_file(given: str | None, default: str, flag: str) -> Path:
    path = Path(given) if given else _shared_dir() / default
    if not path.is_file():
        hint = "" if given else " (set POSESTREAM_SHARED to the shared data folder)"
        raise InputError(f"{flag} {path}: no such file{hint}; or pass --skip-e2e")
    return path


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _set_torch_threads(threads: int) -> int:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def _release_memory(spec: BackendSpec) -> None:
    gc.collect()
    if spec.on_gpu:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _failed(skipped: list, what: str, exc: BaseException) -> None:
    log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
    skipped.append({"what": what, "reason": f"failed: {type(exc).__name__}: {exc}"})


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _command(args: argparse.Namespace, threads: int) -> str:
    """The bench command that reproduces this run (flags as resolved)."""
    parts = ["posestream", "bench"]
    if args.pose_model:
        for path in args.pose_model:
            parts += ["--pose-model", path]
    else:
        parts += ["--variants", *(args.variants or DEFAULT_VARIANTS)]
    if args.backends:
        parts += ["--backends", *args.backends]
    if args.e2e_backends:
        parts += ["--e2e-backends", *args.e2e_backends]
    parts += ["--batch-sizes", *map(str, args.batch_sizes), "--seconds", f"{args.seconds:g}", "--warmup",
              str(args.warmup), "--frames", str(args.frames), "--threads", str(threads)]  # fmt: skip
    for flag in ("skip_e2e", "skip_model", "no_video"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    if args.clip:
        parts += ["--clip", args.clip]
    if args.detector:
        parts += ["--detector", args.detector]
    if args.weights != "none":
        parts += ["--weights", args.weights]
    parts += ["--out-dir", str(args.out_dir)]
    return shlex.join(parts)
