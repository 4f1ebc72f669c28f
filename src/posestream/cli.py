"""Command line: ``posestream run | export | eval | train | bench | info``.

Exit codes: 0 success; 1 a failure inside the graph (the message names the stage and frame) or a
write that failed (disk full, I/O error: the message names the output and path); 2 bad input
(missing or unreadable source, unknown config key or value out of range, bad flag, bad model file,
an output that would overwrite the source or is in use by another run), with a one-line message
and no traceback, before anything is written; 130 stopped by Ctrl-C / SIGTERM (the summary says
which outputs were finalised).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from posestream import __version__
from posestream.errors import ExportError, InputError, OutputError, StageError

__all__ = ["main", "execute", "guarded", "add_pipeline_options", "config_from_args"]

log = logging.getLogger("posestream")

# Subcommands implemented in their own modules: name -> (module, help). Each module exposes
# add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "export": ("posestream.export.cli", "export ViTPose to ONNX (verified against PyTorch) or TensorRT"),
    "eval": ("posestream.evaluation.cli", "COCO keypoint AP of a pose model on a COCO-format dataset"),
    "train": ("posestream.training.cli", "fine-tune ViTPose on a COCO-format keypoint dataset"),
    "bench": ("posestream.bench", "model-only and end-to-end FPS per variant and backend"),
    "angles": ("posestream.analytics.cli", "joint angles per track from a keypoints file: CSV + plots"),
    "batch": ("posestream.batch.cli", "many videos through the run pipeline on Ray (posestream[ray])"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 already; keep one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="posestream", description="Real-time human pose estimation on video with ViTPose.")
    parser.add_argument("--version", action="version", version=f"posestream {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a video file, image folder, camera or URL through the graph")
    run.add_argument("source", help="video file, image folder/glob, camera index (0 = /dev/video0) or URL")
    add_pipeline_options(run)
    run.add_argument("--out-video", help="annotated H.264 MP4")
    run.add_argument("--out-json", help="keypoints as JSON Lines (one line per frame)")
    run.add_argument("--out-csv", help="keypoints as CSV (one row per person and frame)")
    run.add_argument("--out-angles", metavar="DIR", help="joint angles CSV + a plot per track (after the run)")
    run.add_argument("--realtime", action="store_true", help="play a file at its native rate, as a live source")
    run.add_argument("--strict", action="store_true",
                     help="stop at a corrupt packet or a short file (default: skip it and go on, like FFmpeg)")  # fmt: skip
    run.add_argument("--serve", metavar="HOST:PORT", help="serve a live view page, e.g. 127.0.0.1:8080")
    run.add_argument("--show", action="store_true", help="open a desktop window (needs GUI OpenCV)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    from posestream.analytics.cli import add_angle_options

    add_angle_options(run)

    sub.add_parser("info", help="versions, onnxruntime providers, GPU availability")

    chosen = next((a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name != chosen:  # import only the module that runs: `posestream run` stays light
            continue
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):
                raise
            p.set_defaults(_missing=module)
    return parser


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """The config and model options of `run`, shared by every command that runs the pipeline."""
    parser.add_argument("--config", help="preset name (webcam, sports, bench) or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config value, e.g. --set tracker.lost_track_buffer=60")  # fmt: skip
    parser.add_argument("--detector", help="person detector ONNX (YOLOX or Ultralytics); default: whole frame")
    parser.add_argument("--pose-model", help="exported ViTPose ONNX file")
    parser.add_argument("--variant", choices=["s", "b", "l", "h"], help="build ViTPose in PyTorch (with --weights)")
    parser.add_argument("--weights", help="checkpoint path, known name (vitpose-b-coco) or 'none' for random")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8", "fp16"],
                        help="pose model precision; auto (default): bf16 where the CPU has AVX512_BF16/AMX, "
                             "else fp32; int8 quantises once with --calibration")  # fmt: skip
    parser.add_argument("--calibration", metavar="DIR",
                        help="int8 calibration pictures: a folder with images/ and person_keypoints.json")  # fmt: skip
    parser.add_argument("--smooth", choices=["none", "one_euro", "kalman"], help="temporal smoothing filter")
    parser.add_argument("--max-frames", type=int, help="stop after N frames")


def config_from_args(args: argparse.Namespace, extra: dict | None = None):
    """The Config that `add_pipeline_options` flags (and ``extra`` dotted keys, None = unset) describe."""
    from posestream.config import apply_overrides, load_config

    config = load_config(args.config, args.overrides)
    flags = {
        "detector.model": args.detector,
        "pose.model": args.pose_model,
        "pose.variant": args.variant,
        "pose.weights": args.weights,
        "pose.precision": args.precision,
        "pose.calibration": args.calibration,
        "smooth.filter": args.smooth,
        "source.max_frames": args.max_frames,
        **(extra or {}),
    }
    config = apply_overrides(config, {k: v for k, v in flags.items() if v is not None})
    if args.variant and config.pose.model:
        raise InputError("give either --pose-model (ONNX) or --variant/--weights (PyTorch), not both")
    return config


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Until a graph runs (and takes SIGTERM over), SIGTERM is handled like Ctrl-C.
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    args = _build_parser(argv).parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    code = guarded(lambda: _dispatch(args))
    if argv is None and threading.current_thread() is threading.main_thread():
        # The program itself (tests call main(argv)): a late Ctrl-C must not turn a clean exit
        # into a death by signal.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    if argv is None and _abandoned_threads():
        # A stage abandoned inside a native call (an inference session, a codec) is still running:
        # a normal interpreter exit would tear the libraries down under it (C++ aborts with
        # "terminate called without an active exception"). Everything is written and flushed.
        _exit_now(code)
    return code


def _abandoned_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ps-") and t.is_alive()]


def _exit_now(code: int) -> None:
    """Leave at once, skipping interpreter teardown (and the native threads it would abort on)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _sigterm_as_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run(args)
    if args.command == "info":
        return _info()
    if getattr(args, "_missing", None):
        raise InputError(f"'{args.command}' is not available in this build ({args._missing} missing)")
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args) or 0)


def guarded(fn: Callable[[], int]) -> int:
    """Run ``fn`` and turn the package's errors into one-line messages and exit codes."""
    try:
        return fn()
    except InputError as exc:
        print(f"posestream: error: {exc}", file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"posestream: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc.cause, InputError) else 1
    except ExportError as exc:
        print(f"posestream: export failed: {exc}", file=sys.stderr)
        return 1
    except OutputError as exc:
        print(f"posestream: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("posestream: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- run
def _run(args: argparse.Namespace) -> int:
    from posestream.app import RANDOM_BANNER, build_pipeline
    from posestream.config import apply_overrides

    outputs = {"output.video": args.out_video, "output.json": args.out_json, "output.csv": args.out_csv}
    config = config_from_args(args, {**outputs, "source.realtime": True if args.realtime else None,
                                     "source.strict": True if args.strict else None})
    if args.show:
        _check_gui()
    angles_from = None
    if args.out_angles:  # the angle report reads the keypoints file once the run has written it
        angles_from = config.output.json or str(Path(args.out_angles) / "keypoints.jsonl")
        config = apply_overrides(config, {"output.json": angles_from})

    extra, server, serve_sink = [], None, None
    if args.serve:
        from posestream.serve.server import LiveServer
        from posestream.stages.serve import ServeSink

        host, port = _parse_hostport(args.serve)
        server = LiveServer(host=host, port=port)
        # Bound now, before any model loads or output is claimed: a port in use refuses the run
        # while it has touched nothing.
        server.start()
        serve_sink = ServeSink(server)
        extra.append(serve_sink)
    try:
        if args.show:
            from posestream.stages.show import ShowSink

            extra.append(ShowSink(on_quit=lambda: pipeline.graph.request_stop()))
        pipeline = build_pipeline(args.source, config, extra_stages=extra)
        if serve_sink is not None:
            serve_sink.bind(pipeline)
            print(f"live view on {server.url}", file=sys.stderr)
        if pipeline.random_weights:
            print(f"posestream: WARNING: {RANDOM_BANNER} (no trained weights were loaded)", file=sys.stderr)

        progress = not args.no_progress and not pipeline.live and (sys.stderr.isatty() or _force_progress())
        code = execute(pipeline, progress=progress)
    finally:
        if server is not None:
            server.stop()
    if angles_from is not None:
        from posestream.analytics.cli import write_angle_report

        csv_path, plots, rows = write_angle_report(
            angles_from, args.out_angles, threshold=args.angle_threshold, zero_phase_hz=args.zero_phase_hz
        )
        print(f"angles: {csv_path} ({rows} rows), {len(plots)} plot(s)", file=sys.stderr)
    return code


def execute(pipeline, *, progress: bool = False, on_frames: Callable[[int], None] | None = None) -> int:
    """Run a built pipeline to the end: progress bar, SIGTERM handling, summary table.

    ``on_frames(n)`` is called a few times a second with the frames done so far (batch progress).
    Returns 0, or 130 when stopped early (Ctrl-C / SIGTERM); raises StageError on a stage failure
    (after the other stages have finalised their outputs).
    """
    graph = pipeline.graph
    main = threading.current_thread() is threading.main_thread()
    if main:
        stop = _StopOnSignal(graph)
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=pipeline.source.frame_count, unit="frame", desc="posestream", dynamic_ncols=True)

    def tick(g) -> None:
        done = g.metrics[-1].frames_in
        if bar is not None:
            bar.update(done - bar.n)
        if on_frames is not None:
            on_frames(done)

    try:
        result = graph.run(on_tick=tick)
    except StageError:
        _print_outputs(pipeline)
        raise
    finally:
        if bar is not None:
            tick(graph)
            bar.close()
        if main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        pipeline.release()
    _print_summary(result, pipeline)
    _print_outputs(pipeline)
    if result.interrupted:
        print("posestream: stopped early", file=sys.stderr)
        return 130
    return 0


class _StopOnSignal:
    """Ctrl-C / SIGTERM while a graph runs: the first stops it and lets the outputs finalise (the
    summary then says what each file holds); the second exits at once with 130, without waiting
    for anything: JSON/CSV hold whole lines, the video is its fragmented MP4 up to the last frame
    the encoder had released (it plays; it is not remuxed, and holds no audio)."""

    def __init__(self, graph) -> None:
        self.graph = graph
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count == 1:
            self.graph.request_stop()
            os.write(2, b"posestream: stopping; finalising outputs (press Ctrl-C again to quit at once)\n")
            return
        os.write(2, b"posestream: interrupted again: quitting now; outputs keep what was written "
                    b"(the video as a fragmented MP4)\n")  # fmt: skip
        _exit_now(130)


def _print_outputs(pipeline) -> None:
    """Say what each output file holds and whether it was finalised (never claim what was not)."""
    describe = getattr(pipeline, "describe_outputs", None)
    for line in describe() if describe is not None else []:
        print(f"  {line}", file=sys.stderr)


def _force_progress() -> bool:
    return os.environ.get("POSESTREAM_PROGRESS") == "1"


def _parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"--serve '{text}': expected HOST:PORT, e.g. 127.0.0.1:8080")
    if not 0 <= int(port) <= 65535:
        raise InputError(f"--serve '{text}': port {int(port)} is out of range 0..65535")
    return host or "127.0.0.1", int(port)


def _check_gui() -> None:
    import cv2

    info = cv2.getBuildInformation()
    gui = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.strip().startswith("GUI:")), "NONE")
    if gui.upper() == "NONE":
        raise InputError(
            "--show needs an OpenCV build with a GUI, and this one (opencv-python-headless) has none: "
            "use --serve 127.0.0.1:8080 and open the page in a browser"
        )


def _print_summary(result, pipeline) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"posestream: {result.stages[-1].frames_in} frames in {result.wall_s:.1f} s")
    for col in ("stage", "in", "out", "dropped", "p50 ms", "p95 ms", "busy", "max queue"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in result.stages:
        table.add_row(s.name, str(s.frames_in), str(s.frames_out), str(s.dropped), f"{s.p50_ms:.1f}",
                      f"{s.p95_ms:.1f}", f"{s.busy:.0%}", str(s.max_queue))  # fmt: skip
    console = Console(stderr=True)
    console.print(table)
    for what, text in getattr(pipeline, "resources", {}).items():
        console.print(f"{what}: {text}", highlight=False)
    if pipeline.random_weights:
        console.print("[bold red]random weights: keypoints are meaningless[/]")


# --------------------------------------------------------------------------- info
def _info() -> int:
    import platform

    import av
    import cv2
    import numpy
    import onnxruntime as ort

    lines = {
        "posestream": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))) + " (libavcodec)",
        "libx264": "yes" if "libx264" in av.codecs_available else "no",
        "onnxruntime": ort.__version__,
        "onnxruntime providers": ", ".join(ort.get_available_providers()),
    }
    try:
        import torch

        lines["torch"] = torch.__version__
        cuda = torch.cuda.is_available()
        lines["torch cuda"] = f"yes ({torch.cuda.get_device_name(0)})" if cuda else "no"
    except ImportError:
        cuda = False
        lines["torch"] = "not installed"
    ort_gpu = any(p in ort.get_available_providers() for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))
    try:
        import tensorrt  # noqa: F401

        lines["tensorrt"] = tensorrt.__version__
    except ImportError:
        lines["tensorrt"] = "not installed"
    lines["gpu usable"] = "yes" if (cuda or ort_gpu) else "no (CPU only)"
    width = max(map(len, lines))
    for key, value in lines.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
