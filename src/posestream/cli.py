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
    "biomech": ("posestream.biomech.cli", "OpenSim TRC/MOT, velocities, accelerations per track from keypoints"),
    "models": ("posestream.export.models_cli", "known pose models and detectors, what is cached; `models pull NAME`"),
    "config": ("posestream.config_cli", "`config show`: every config key with its value, range, default and meaning"),
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` where there is a default worth showing (not None, False or [])."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or action.default == []:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        # -v/-q are read off the whole command line before parsing (split_verbosity); they are
        # declared on every parser only so that each --help lists them.
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="more logging (-vv for debug); anywhere on the line")  # fmt: skip
        self.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="errors only: no progress, summary or file list; anywhere on the line")  # fmt: skip

    def error(self, message: str) -> None:  # argparse's own exit code is 2 already; keep one line
        self.exit(2, f"{self.prog}: error: {message}\n")


_VERBOSE_FLAGS = {"-v": 1, "--verbose": 1, "-vv": 2, "-vvv": 3}
_QUIET_FLAGS = ("-q", "--quiet")


def split_verbosity(argv: list[str]) -> tuple[list[str], int, bool]:
    """Take ``-v``/``-vv``/``--verbose``/``-q``/``--quiet`` out of ``argv`` wherever they stand
    (before or after the subcommand; not after a ``--``). Returns (rest, verbosity, quiet)."""
    rest, verbose, quiet = [], 0, False
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        if arg in _VERBOSE_FLAGS:
            verbose += _VERBOSE_FLAGS[arg]
        elif arg in _QUIET_FLAGS:
            quiet = True
        else:
            rest.append(arg)
    return rest, verbose, quiet


def _cfg_default(dotted: str) -> object:
    """The built-in default of a config key (shown in help texts)."""
    from posestream.config import Config

    node: object = Config()
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="posestream", description="Real-time human pose estimation on video with ViTPose.")
    parser.add_argument("--version", action="version", version=f"posestream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a video file, image folder, camera or URL through the graph")
    run.add_argument("source", help="video file, image folder/glob, camera index (0 = /dev/video0) or URL")
    add_pipeline_options(run)
    run.add_argument("--out-video", help="annotated H.264 MP4; for a single still, an image file (.png, .jpg)")
    run.add_argument("--out-dir", help="image sources: annotated pictures in this folder, under their own names")
    run.add_argument("--out-json", help="keypoints as JSON Lines (one line per frame)")
    run.add_argument("--out-csv", help="keypoints as CSV (one row per person and frame)")
    run.add_argument("--out-angles", metavar="DIR", help="joint angles CSV + a plot per track (after the run)")
    run.add_argument("--out-biomech", metavar="DIR",
                     help="per track after the run: OpenSim TRC (markers) and MOT (angles), velocities and "
                          "accelerations CSV, plot (see --person-height, --scale-points, --max-gap)")  # fmt: skip
    run.add_argument("--keypoints-from", metavar="JSONL",
                     help="replay an earlier run's keypoints (its --out-json) instead of running the models: "
                          "re-render, re-smooth, re-analyse")  # fmt: skip
    run.add_argument("--exercise", metavar="NAME|YAML",
                     help="count reps and give form cues: squat, push_up, lunge, biceps_curl or a YAML file")
    run.add_argument("--out-reps", metavar="JSONL", help="rep events as JSON Lines (with --exercise)")
    run.add_argument("--realtime", action="store_true", help="play a file at its native rate, as a live source")
    run.add_argument("--strict", action="store_true",
                     help="stop at a corrupt packet or a short file (default: skip it and go on, like FFmpeg)")  # fmt: skip
    run.add_argument("--track", action="store_true",
                     help="image folders/globs are a frame sequence: track people across them (default: "
                          "independent photos, every detection posed)")  # fmt: skip
    run.add_argument("--serve", metavar="HOST:PORT", help="serve a live view page, e.g. 127.0.0.1:8080")
    run.add_argument("--show", action="store_true", help="open a desktop window (needs GUI OpenCV)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    run.add_argument("--progress-every", type=float, default=5.0, metavar="SECONDS",
                     help="when stderr is not a terminal: a progress line (frames, fps, eta) this often")  # fmt: skip
    from posestream.analytics.cli import add_angle_options
    from posestream.biomech.cli import add_biomech_options

    add_angle_options(run)
    add_biomech_options(run)

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
    parser.add_argument("--config", help="preset name (webcam, sports, bench) or YAML file (a path: has a / or "
                                         "a .yaml/.yml suffix); default: built-in defaults")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config value, e.g. --set tracker.lost_track_buffer=60 (repeatable; "
                             "every key with its meaning: posestream config show)")  # fmt: skip
    parser.add_argument("--detector", metavar="FILE|NAME|none",
                        help="person detector: an ONNX file (YOLOX or Ultralytics), a known name (yolox-nano "
                             "... yolox-l, fetched once into the cache) or 'none' (one box = the whole frame). "
                             "Default (run): yolox-nano when no model is named at all, else none")  # fmt: skip
    parser.add_argument("--pose-model", metavar="FILE|NAME|none",
                        help="pose model: an exported ViTPose ONNX file, a known name (vitpose-<s|b|l|h>-<set>, e.g. "
                             "vitpose-s-coco, vitpose-l-wholebody: fetched and exported once into the cache; "
                             "`posestream models` lists them) or 'none' (boxes and ids only). "
                             "Default (run): vitpose-s-coco when no model is named")  # fmt: skip
    parser.add_argument("--variant", choices=["s", "b", "l", "h"], help="build ViTPose in PyTorch (with --weights)")
    parser.add_argument("--weights", help="checkpoint path, known name (vitpose-b-wholebody; `posestream models` "
                        "lists them), Hub id (usyd-community/vitpose-base-simple), transformers folder, or "
                        "'none' for random")  # fmt: skip
    parser.add_argument("--keypoints", metavar="SET", help="keypoint set the model must predict (coco, coco_25, "
                        "wholebody, mpii, aic, ap10k, apt36k); default: the model's own")  # fmt: skip
    parser.add_argument("--expert", help="ViTPose+ expert: coco, aic, mpii, ap10k, apt36k, wholebody")
    parser.add_argument("--conf", type=float, metavar="SCORE",
                        help="detector score a box needs to become a person: photos and untracked runs pose "
                             f"every box above it (detector.conf, default {_cfg_default('detector.conf')}); "
                             "tracked runs start tracks only above it (tracker.new_track_threshold, default "
                             f"{_cfg_default('tracker.new_track_threshold')}; lower boxes still follow people "
                             "already tracked)")  # fmt: skip
    parser.add_argument("--device", metavar="cpu|cuda|cuda:N",
                        help="where the models run: sets pose.device and the onnxruntime providers of the "
                             "pose model and the detector (cuda: CUDA first, CPU as fallback); default cpu")  # fmt: skip
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8", "fp16"],
                        help="pose model precision; auto (default): bf16 where the CPU has AVX512_BF16/AMX, "
                             "else fp32; int8 quantises once with --calibration")  # fmt: skip
    parser.add_argument("--calibration", metavar="DIR",
                        help="int8 calibration pictures: a folder with images/ and person_keypoints.json")  # fmt: skip
    parser.add_argument("--smooth", choices=["none", "one_euro", "kalman"],
                        help=f"temporal smoothing filter (smooth.filter; default {_cfg_default('smooth.filter')} "
                             "or the preset's)")  # fmt: skip
    parser.add_argument("--max-frames", type=int, help="stop after N frames (default: the whole source)")


def config_from_args(args: argparse.Namespace, **settings):
    """The Config that `add_pipeline_options` flags describe, then ``settings`` (more flags, by their
    API names: ``out_video=...``; None = unset). Flags map to config keys through the API's
    ``make_config`` (``posestream.api.SHORTCUTS``), so `run` and ``posestream.track`` agree."""
    from posestream.api import make_config

    config = make_config(args.config, args.overrides, detector=args.detector, pose=args.pose_model,
                         variant=args.variant, weights=args.weights, precision=args.precision,
                         calibration=args.calibration, smooth=args.smooth, max_frames=args.max_frames,
                         conf=args.conf, device=args.device, keypoints=getattr(args, "keypoints", None),
                         expert=getattr(args, "expert", None),
                         **settings)  # fmt: skip
    if (args.variant or args.weights) and config.pose.model:
        raise InputError("give either --pose-model (ONNX) or --variant/--weights (PyTorch), not both")
    return config


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Until a graph runs (and takes SIGTERM over), SIGTERM is handled like Ctrl-C.
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    program = argv is None  # the program itself, not a test calling main(argv)
    argv, verbose, quiet = split_verbosity(list(sys.argv[1:] if argv is None else argv))
    args = _build_parser(argv).parse_args(argv)
    args.verbose, args.quiet, args.program = verbose, quiet, program
    level = logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    code = guarded(lambda: _dispatch(args))
    if program and threading.current_thread() is threading.main_thread():
        # The program itself (tests call main(argv)): a late Ctrl-C must not turn a clean exit
        # into a death by signal.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    if program and _abandoned_threads():
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
    from posestream.app import RANDOM_BANNER, build_pipeline, with_default_models
    from posestream.config import apply_overrides

    config = config_from_args(
        args, out_video=args.out_video, out_dir=args.out_dir, out_json=args.out_json, out_csv=args.out_csv,
        out_reps=args.out_reps, keypoints_from=args.keypoints_from, exercise=args.exercise,
        track_images=True if args.track else None, realtime=True if args.realtime else None,
        strict=True if args.strict else None, serve=args.serve, show=True if args.show else None,
    )  # fmt: skip
    config, chosen = with_default_models(config)
    angles_from = None
    report_dir = args.out_angles or args.out_biomech
    if report_dir:  # the reports read the keypoints file once the run has written it
        angles_from = config.output.json or str(Path(report_dir) / "keypoints.jsonl")
        config = apply_overrides(config, {"output.json": angles_from})

    pipeline = build_pipeline(args.source, config, require_output=True)
    if chosen and not args.quiet:  # said once everything is checked: a bad input stays a one-line error
        print(f"posestream: {chosen}", file=sys.stderr)
    if pipeline.live_url:
        print(f"live view on {pipeline.live_url}", file=sys.stderr)
    if pipeline.random_weights:
        print(f"posestream: WARNING: {RANDOM_BANNER} (no trained weights were loaded)", file=sys.stderr)

    progress = not (args.no_progress or args.quiet)
    # The program keeps its Ctrl-C handler to the end: a second Ctrl-C just after the graph ended
    # still quits with 130 (restoring Python's would let it raise anywhere, even at exit).
    code = execute(pipeline, progress=progress, progress_every_s=args.progress_every, quiet=args.quiet,
                   restore_signals=not getattr(args, "program", False))  # fmt: skip
    outputs = list(pipeline.outputs)
    if not args.quiet:
        _print_reps(pipeline)
    if angles_from is not None and args.out_angles:
        from posestream.analytics.cli import write_angle_report

        csv_path, plots, rows = write_angle_report(
            angles_from, args.out_angles, threshold=args.angle_threshold, zero_phase_hz=args.zero_phase_hz
        )
        outputs += [csv_path, *plots]
    if angles_from is not None and args.out_biomech:
        from posestream.biomech.cli import write_from_args

        summary = write_from_args(angles_from, args.out_biomech, args)
        if not args.quiet:
            print(f"biomech: {len(summary['tracks'])} track(s) in {args.out_biomech} ({summary['units']})",
                  file=sys.stderr)  # fmt: skip
        outputs.append(Path(args.out_biomech))
    if not args.quiet:
        _print_written(outputs)
    return code


def _print_reps(pipeline) -> None:
    sink = pipeline.extras.get("exercise")
    if sink is None:
        return
    from collections import Counter

    if not sink.totals:
        print("reps: none counted", file=sys.stderr)
    for tid, reps in sorted(sink.totals.items()):
        cues = Counter(sink.cues.get(tid, []))
        said = ", ".join(f"{c} x{n}" for c, n in cues.most_common()) or "no cues"
        print(f"reps: track {tid}: {reps} ({said})", file=sys.stderr)


def execute(pipeline, *, progress: bool = False, progress_every_s: float = 5.0, quiet: bool = False,
            on_frames: Callable[[int], None] | None = None, restore_signals: bool = True) -> int:  # fmt: skip
    """Run a built pipeline to the end: progress, SIGTERM handling, summary table.

    progress: on a terminal a bar (files only: a live source has no end to measure against), else a
    line every ``progress_every_s`` seconds (frames, fps, eta). quiet: no summary table.
    Ctrl-C / SIGTERM: the first stops the graph, a second quits at once (``_StopOnSignal``); the
    handlers are put back on return unless ``restore_signals`` is False (the CLI program).
    ``on_frames(n)`` is called a few times a second with the frames done so far (batch progress).
    Returns 0, or 130 when stopped early (Ctrl-C / SIGTERM); raises StageError on a stage failure
    (after the other stages have finalised their outputs).
    """
    graph = pipeline.graph
    main = threading.current_thread() is threading.main_thread()
    if main:
        stop = _StopOnSignal(graph)
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = lines = None
    total = pipeline.source.frame_count
    if progress and (sys.stderr.isatty() or _force_progress()):
        if not pipeline.live:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="frame", desc="posestream", dynamic_ncols=True)
    elif progress:
        from posestream.progress import LineProgress

        lines = LineProgress(None if pipeline.live else total, sys.stderr, every_s=progress_every_s)

    def tick(g) -> None:
        done = g.metrics[-1].frames_in
        if bar is not None:
            bar.update(done - bar.n)
        if lines is not None:
            lines.update(done)
        if on_frames is not None:
            on_frames(done)

    try:
        try:
            result = graph.run(on_tick=tick if (bar or lines or on_frames) else None)
        except StageError:
            if not quiet:
                _print_outputs(pipeline)
            raise
        finally:
            if bar is not None or lines is not None or on_frames is not None:
                tick(graph)
            if bar is not None:
                bar.close()
            if lines is not None:
                lines.close()
            pipeline.release()
        if not quiet:
            _print_summary(result, pipeline)
            _print_outputs(pipeline)
        if result.interrupted:
            print("posestream: stopped early", file=sys.stderr)
            return 130
        return 0
    finally:
        # Restored only now: a second Ctrl-C while the summary prints still quits at once with 130.
        if main and restore_signals:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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


def _print_written(paths: list[Path]) -> None:
    from posestream.progress import format_size, written_files

    found = written_files(paths)
    if not found:
        print("posestream: no output file was written", file=sys.stderr)
        return
    width = max(len(str(p)) for p, _, _ in found)
    print("posestream: wrote", file=sys.stderr)
    for path, size, count in found:
        what = f"{format_size(size)}" + (f" in {count} files" if path.is_dir() else "")
        print(f"  {str(path):<{width}}  {what}", file=sys.stderr)


def _force_progress() -> bool:
    return os.environ.get("POSESTREAM_PROGRESS") == "1"


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
