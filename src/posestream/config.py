"""Configuration: YAML -> typed frozen dataclasses.

Every key is checked against the dataclass it lands in: an unknown key or a value of the wrong type
is a ``ConfigError`` naming its path (``tracker.lost_track_buffer: expected int, got 'abc'``).
Every field is declared with ``setting(default, help, range)``: the help text and, for numeric
keys, the ``Range`` it accepts live in the field's metadata, are checked on load (NaN and
infinities never pass) and listed by ``config_rows()`` for ``posestream config show``. Hostile
YAML is bounded: aliases may not expand past ``MAX_YAML_NODES`` values, and no message echoes more
than ``MAX_ECHO`` characters of a value.
Built-in presets live in ``posestream/configs/*.yaml`` and are named without the suffix
(``webcam``, ``sports``, ``bench``); a value with a path separator or a ``.yaml``/``.yml`` suffix is
a file, anything else a preset name (see ``is_config_path``); ``--set section.key=value`` overrides one value (the value
is parsed as YAML, so ``--set pose.providers=[cuda,cpu]`` works).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml

from posestream.errors import ConfigError

__all__ = [
    "Config", "SourceConfig", "PipelineConfig", "DetectorConfig", "TrackerConfig", "PoseConfig",
    "SmoothConfig", "RenderConfig", "ExerciseConfig", "OutputConfig", "load_config", "preset_names",
    "apply_overrides", "Range", "setting", "ConfigRow", "config_rows", "is_config_path",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Range:
    """The values a numeric key accepts: ``lo``/``hi`` bounds (None = unbounded), open or closed.

    NaN and infinities are never in range. For a tuple field the range applies to every element.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: lo itself is excluded (x > lo)
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        try:
            if not math.isfinite(value):
                return False
        except OverflowError:  # an int too large for a float
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    @property
    def text(self) -> str:
        lo = None if self.lo is None else f"{_num(self.lo)} {'<' if self.lo_open else '<='} "
        hi = None if self.hi is None else f" {'<' if self.hi_open else '<='} {_num(self.hi)}"
        if lo and hi:
            return f"{lo}x{hi}"
        if lo:
            return f"x {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if hi:
            return f"x{hi}"
        return "any finite number"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e9 else f"{x:g}"


def setting(default: Any, help: str, range: Range | None = None) -> Any:  # noqa: A002 - the schema's word
    """A config field with its help text and (numeric keys) its range, kept in the field's metadata."""
    return field(default=default, metadata={"help": help, "range": range})


UNIT = Range(0.0, 1.0)  # scores, thresholds, IoU
POSITIVE = Range(0.0, None, lo_open=True)
COUNT = Range(1, None)
THREADS = Range(0, 1024)  # 0: decided by the CPU thread budget


@dataclass(frozen=True, slots=True)
class SourceConfig:
    live: Literal["auto", "true", "false"] = setting(
        "auto", "treat the source as live (drop-oldest edges, no pacing); auto: cameras and network streams")
    realtime: bool = setting(False, "play a file at its native rate (as if it were a camera); implies live")
    image_fps: float = setting(30.0, "frame rate assumed for image folders (frames/s)", Range(0.0, 1000.0, lo_open=True))
    max_frames: int | None = setting(None, "stop after this many frames (null: the whole source)", COUNT)
    strict: bool = setting(False, "a corrupt packet or a file shorter than it declares stops the run (exit 2); "
                           "default: skipped and counted, like FFmpeg")  # fmt: skip
    # Image folders, globs and stills are independent photos (no tracking, no smoothing, every
    # detection scoring detector.conf or more posed); true: a frame sequence, tracked like a video.
    track_images: bool = setting(False, "image folders, globs and stills: false = independent photos (no tracking, "
                                 "every box >= detector.conf posed); true = a frame sequence, tracked")  # fmt: skip


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    queue_size: int = setting(4, "capacity of each edge for files (lossless back-pressure)", Range(1, 1024))
    live_queue_size: int = setting(1, "capacity of each edge for live sources (drop-oldest)", Range(1, 64))
    overflow: Literal["auto", "block", "drop_oldest"] = setting(
        "auto", "what a full edge does: block (lossless) or drop_oldest; auto: drop_oldest iff live")
    shutdown_timeout_s: float = setting(
        2.0, "after a stop, how long one call inside a stage may still take before the stage is abandoned (s)",
        Range(0.0, 3600.0, lo_open=True))
    # CPU thread budget (posestream.pipeline.budget): cores shared among the pose model, the
    # detector, the decoder and the encoder; 0 = auto (the process's usable cores; each consumer
    # with 0 threads gets 1 plus its share of the spare cores, the pose model most).
    cores: int = setting(0, "CPU cores the run's threads share (pose model, detector, decoder, encoder); "
                         "0: the usable cores of this process", THREADS)  # fmt: skip
    decode_threads: int = setting(0, "FFmpeg decoder threads; 0: from the budget (pipeline.cores)", THREADS)
    encode_threads: int = setting(0, "libx264 encoder threads; 0: from the budget (pipeline.cores)", THREADS)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    model: str | None = setting(
        None, "person detector: an ONNX file (YOLOX or Ultralytics), a known name (yolox-nano ... yolox-l) or "
        "'none' (one box = the whole frame); unset: yolox-nano when `run` names no model at all")  # fmt: skip
    # Kept low on purpose: ByteTrack's second association uses the low-score boxes (a person half
    # hidden) to keep their track alive; only boxes above tracker.new_track_threshold start a
    # person. With the tracker disabled, boxes below tracker.track_activation_threshold are dropped.
    score_threshold: float = setting(0.1, "boxes scoring below this are dropped (low on purpose: the tracker "
                                     "uses low boxes to keep tracks alive)", UNIT)  # fmt: skip
    # A box scoring at least this is a person when nothing tracks it (photos, tracker.enabled false).
    # 0.3: YOLOX-Nano's person recall on the COCO val subset is 0.685 there (0.648 at 0.4).
    conf: float = setting(0.3, "a box scoring at least this is a person when nothing tracks it "
                          "(photos, tracker off; same as run --conf)", UNIT)  # fmt: skip
    nms_iou_threshold: float = setting(0.45, "boxes overlapping more than this IoU are duplicates", UNIT)
    detect_every: int = setting(
        1, "run the detector every N frames; the tracker predicts boxes in between", Range(1, 1000))
    # Keypoint-driven boxes (tracking/keypoint_boxes.py): between detections a confidently posed
    # person is posed in the box of their last keypoints, and the detector runs every detect_every
    # frames or at once when someone's confidence drops (live: less often while pose falls behind).
    keypoint_boxes: bool = setting(False, "between detections, pose a confidently posed person in the box of "
                                   "their last keypoints; detect again when confidence drops")  # fmt: skip
    keypoint_min_confidence: float = setting(
        0.5, "keypoint boxes: fraction of keypoints above smooth.score_threshold that counts as confident", UNIT)
    max_people: int = setting(100, "keep at most this many boxes per frame (highest scores)", Range(1, 10000))
    providers: tuple[str, ...] = setting(("cpu",), "onnxruntime providers in order of preference: cpu | cuda | tensorrt")
    threads: int = setting(0, "inference threads of the detector; 0: from the budget (pipeline.cores)", THREADS)
    engine: Literal["auto", "onnxruntime", "openvino"] = setting(
        "auto", "inference engine; auto: OpenVINO on the CPU (when installed), onnxruntime with GPU providers")
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto", "detector precision; auto: bf16 where the CPU has AVX512_BF16 / AMX (OpenVINO), else fp32")


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """ByteTrack (posestream.tracking.bytetrack); names follow supervision's where they exist."""

    enabled: bool = setting(True, "track people across frames (ids); off: every frame stands alone")
    track_activation_threshold: float = setting(
        0.4, "box score splitting the first association (above) from the second (below)", UNIT)
    low_score_threshold: float = setting(0.1, "boxes below this score are ignored entirely", UNIT)
    new_track_threshold: float = setting(0.5, "an unmatched box starts a new track only above this score", UNIT)
    minimum_matching_threshold: float = setting(
        0.8, "max cost (1 - IoU x score) of a match in the first association", UNIT)
    second_match_threshold: float = setting(0.5, "max cost (1 - IoU) of a match for low-score boxes", UNIT)
    lost_track_buffer: int = setting(
        30, "frames (at frame_rate) a lost track waits to be found again", Range(0, 1_000_000))
    # Converts lost_track_buffer to seconds (time-based, drop-proof) and sets the Kalman noise's time
    # unit. None: the source's nominal frame rate (so the buffer is lost_track_buffer of its frames).
    frame_rate: float | None = setting(
        None, "converts lost_track_buffer to seconds (time-based, so dropped frames do not matter); "
        "null: the source's frame rate (frames/s)", Range(0.0, 1000.0, lo_open=True))  # fmt: skip
    minimum_consecutive_frames: int = setting(1, "frames a new track must be seen before it is reported", Range(1, 1000))
    # Report a lost track at its motion-predicted box for this long after its last detection, so
    # a missed detection (backlight, blur) does not cost a pose. 0 = off (live: no guessing).
    coast_lost_s: float = setting(
        0.0, "report a lost track at its predicted box this long after its last detection; 0: off (s)",
        Range(0.0, 60.0))
    # Recorded footage (not live): hold this many seconds of frames back so that a track, once
    # confirmed, is also reported in them from the first frame its person was detected (gaps up to
    # coast_lost_s interpolated). Costs that much delay and memory (frames held). 0 = off.
    backfill_s: float = setting(
        0.0, "recorded footage: hold this many seconds of frames back so a confirmed track is reported from "
        "its person's first detection; costs that delay and memory; 0: off (s)", Range(0.0, 60.0))  # fmt: skip


@dataclass(frozen=True, slots=True)
class PoseConfig:
    model: str | None = setting(
        None, "pose model: an exported ViTPose ONNX file, a known name (vitpose-s-coco ...: `posestream models`) or "
        "'none' (boxes only); or build from variant + weights; unset: vitpose-s-coco when `run` names no model")  # fmt: skip
    variant: str | None = setting(None, "ViTPose size s | b | l | h, built in PyTorch (with weights)")
    weights: str | None = setting(None, "checkpoint path, known name (vitpose-b-wholebody: `posestream models`), Hub "
                                  "id or transformers folder, or 'none' (random weights)")  # fmt: skip
    decoder: Literal["classic", "simple"] = setting(
        "classic", "ViTPose head for random weights: classic (deconvolutions) or simple (files say their own)")
    keypoints: str | None = setting(
        None, "keypoint set the model must predict (coco, coco_25, wholebody, mpii, aic, ap10k, apt36k); "
        "unset: the model's own")  # fmt: skip
    expert: str | None = setting(None, "ViTPose+ expert: coco | aic | mpii | ap10k | apt36k | wholebody")
    providers: tuple[str, ...] = setting(("cpu",), "onnxruntime providers in order of preference: cpu | cuda | tensorrt")
    device: str = setting("cpu", "torch device for variant + weights runs: cpu, cuda, cuda:1 ...")
    engine: Literal["auto", "onnxruntime", "openvino"] = setting(
        "auto", "engine for ONNX files; auto: OpenVINO on the CPU (when installed), onnxruntime with GPU providers")
    # auto = the fastest precision this CPU runs natively without measurable loss: bf16 where it has
    # AVX512_BF16 / AMX (OpenVINO, torch), else fp32. int8 quantises an fp32 file once (cached),
    # calibrated on `calibration`; fp16: torch on a GPU, or a file exported as fp16.
    precision: Literal["auto", "fp32", "bf16", "int8", "fp16"] = setting(
        "auto", "pose precision; auto: bf16 where the CPU runs it natively, else fp32; int8: quantised once, "
        "calibrated on `calibration`")  # fmt: skip
    calibration: str | None = setting(None, "folder with images/ + person_keypoints.json for int8 calibration")
    threads: int = setting(0, "inference threads per pose worker; 0: from the budget (pipeline.cores)", THREADS)
    # Pose workers: copies of the pose stage (each its own session) on frames in turn, outputs put
    # back in frame order. Lossless sources only; keypoint-driven boxes need 1 (previous frame).
    workers: int = setting(1, "copies of the pose stage, each with its own session, on frames in turn "
                           "(lossless sources only)", Range(1, 64))  # fmt: skip
    # Pad each frame's batch up to one of these sizes so GPU engines (CUDA graphs, TensorRT
    # profiles) are not re-planned for every people count. Empty = auto: (1, 2, 4, 8, 16, 32, 64)
    # on GPU, no padding on CPU, where padded crops cost full compute (measured: ViTPose-S on ORT
    # CPU takes ~0.9 s for 3 crops and ~1.2 s for 4; padding 9 people to 16 nearly doubles it).
    batch_buckets: tuple[int, ...] = setting(
        (), "pad each frame's batch of people up to one of these sizes; empty: powers of 2 on GPU, none on CPU",
        Range(1, 1024))
    # The fast GPU path for PyTorch models; "auto" = on when the model runs on CUDA.
    compile: Literal["auto", "true", "false"] = setting(
        "auto", "torch.compile the pose model (the first run compiles, ~1 min); auto: on CUDA")
    cuda_graphs: Literal["auto", "true", "false"] = setting(
        "auto", "one captured CUDA graph per batch bucket; auto: on CUDA")
    device_pipeline: Literal["auto", "true", "false"] = setting(
        "auto", "warp, normalise and decode on the GPU too; auto: on CUDA")
    # Cross-frame batching: people of consecutive frames in one model call. Lossless sources only
    # (files, image folders); a live source always runs each frame at once. "auto" = on GPU.
    cross_frame: Literal["auto", "true", "false"] = setting(
        "auto", "people of consecutive frames in one model call (lossless sources only); auto: on GPU")
    cross_frame_crops: int = setting(
        64, "cross-frame: a batch runs once it holds this many people", Range(1, 4096))
    cross_frame_frames: int = setting(32, "cross-frame: ... or this many frames", Range(1, 1024))
    cross_frame_wait_s: float = setting(
        0.5, "cross-frame: ... or when its oldest frame has waited this long (s)", Range(0.0, 60.0, lo_open=True))
    # Replay: poses from an earlier run's keypoints JSON Lines (matched by frame index, checked by
    # pts) instead of detector + tracker + model; smoothing, rendering and analyses run again.
    keypoints_from: str | None = setting(
        None, "replay: poses from an earlier run's keypoints JSON Lines instead of the models (--keypoints-from)")


@dataclass(frozen=True, slots=True)
class SmoothConfig:
    filter: Literal["none", "one_euro", "kalman"] = setting("one_euro", "temporal smoothing of keypoints")
    score_threshold: float = setting(0.3, "keypoints scoring below this do not move the estimate", UNIT)
    # Defaults chosen by benchmarks/smoothing_tuning.py (synthetic 30 fps tracks, 2 px jitter):
    # one-euro removes 72% of jitter at rest and reaches 90% of a step in 2 frames.
    min_cutoff: float = setting(2.5, "one-euro: cutoff at rest; lower = smoother when still, more lag (Hz)",
                                Range(0.0, 1000.0, lo_open=True))  # fmt: skip
    beta: float = setting(0.01, "one-euro: speed coefficient; higher = less lag when moving fast (1/px)",
                          Range(0.0, 100.0))  # fmt: skip
    d_cutoff: float = setting(1.0, "one-euro: cutoff of the speed estimate (Hz)", Range(0.0, 1000.0, lo_open=True))
    process_var: float = setting(
        1e5, "kalman: white-noise acceleration variance; higher = less lag ((px/s^2)^2)", Range(0.0, 1e12, lo_open=True))
    measurement_var: float = setting(
        4.0, "kalman: measurement variance at score 1; R = measurement_var / score^2 (px^2)", Range(0.0, 1e8, lo_open=True))
    forget_after_s: float = setting(1.0, "drop a track's filter state when unseen this long (s)", Range(0.0, 3600.0))


@dataclass(frozen=True, slots=True)
class RenderConfig:
    enabled: bool = setting(True, "draw people on the frames of the video and live outputs")
    keypoint_threshold: float = setting(0.3, "keypoints scoring below this are not drawn", UNIT)
    draw_boxes: bool = setting(True, "draw each person's box and track id")
    # fps, latency and people count, in a strip above the picture. None (auto): in live views
    # (--serve, --show) only; true: also burnt into saved videos and pictures; false: nowhere.
    hud: bool | None = setting(None, "fps, latency and people count in a strip above the picture; "
                               "null: live views only; true: saved videos and pictures too; false: nowhere")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExerciseConfig:
    """Rep counting and form cues (posestream.exercises) for every tracked person."""

    name: str | None = setting(
        None, "count reps and give form cues: squat, push_up, lunge, biceps_curl or a YAML file; null: off (--exercise)")
    score_threshold: float = setting(0.3, "keypoints scoring below this never move a phase nor fire a cue", UNIT)
    forget_after_s: float = setting(5.0, "a track unseen this long loses its count (s)", Range(0.0, 3600.0))


@dataclass(frozen=True, slots=True)
class OutputConfig:
    video: str | None = setting(
        None, "annotated H.264 MP4 (same as --out-video); an image suffix (.png, .jpg) for a single still")
    image_dir: str | None = setting(None, "image sources: annotated pictures under their own names (--out-dir)")
    serve: str | None = setting(None, "HOST:PORT of a live view page (MJPEG + stats), e.g. 127.0.0.1:8080 (--serve)")
    show: bool = setting(False, "a desktop window (needs an OpenCV build with a GUI) (--show)")
    json: str | None = setting(None, "keypoints as JSON Lines, one line per frame (same as --out-json)")
    csv: str | None = setting(None, "keypoints as CSV, one row per person and frame (same as --out-csv)")
    reps: str | None = setting(None, "rep events as JSON Lines, one line per completed rep (with exercise.name; "
                               "--out-reps)")  # fmt: skip
    crf: int = setting(20, "H.264 quality: lower = better and bigger (0 = lossless)", Range(0, 51))
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"] = (
        setting("veryfast", "x264 speed/size trade-off: slower presets make smaller files"))


@dataclass(frozen=True, slots=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    exercise: ExerciseConfig = field(default_factory=ExerciseConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# --------------------------------------------------------------------------- schema
class ConfigRow(NamedTuple):
    """One key of the schema, for ``posestream config show``: every text ready to print."""

    key: str  # dotted: "tracker.lost_track_buffer"
    type: str  # "int", "float | null", "list of str", "one of: auto, true, false"
    default: str  # as YAML would write it
    range: str  # "1 <= x <= 1000", "0 <= x <= 1", "" when the type says it all
    help: str
    value: str  # in the config passed to config_rows (the default when none was)


def config_rows(config: Config | None = None) -> list[ConfigRow]:
    """Every config key in declaration order, with type, default, range, help and current value."""
    config = config or Config()
    rows = []
    for section in dataclasses.fields(Config):
        cls = section.type if isinstance(section.type, type) else typing.get_type_hints(Config)[section.name]
        hints = typing.get_type_hints(cls)
        current = getattr(config, section.name)
        defaults = cls()
        for f in dataclasses.fields(cls):
            rng = f.metadata.get("range")
            rows.append(ConfigRow(
                key=f"{section.name}.{f.name}",
                type=_type_text(hints[f.name]),
                default=_yaml_text(getattr(defaults, f.name)),
                range=rng.text if rng is not None else "",
                help=f.metadata.get("help", ""),
                value=_yaml_text(getattr(current, f.name)),
            ))  # fmt: skip
    return rows


def _type_text(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_text(a) for a in args)
    if origin is Literal:
        return "one of: " + ", ".join(map(str, args))
    if origin is tuple:
        return f"list of {_type_text(args[0])}"
    return getattr(tp, "__name__", str(tp))


def _yaml_text(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


# --------------------------------------------------------------------------- loading
def preset_names() -> list[str]:
    folder = resources.files("posestream") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset name, a YAML file, or None (defaults); then ``section.key=value`` overrides."""
    data: dict[str, Any] = {}
    if name_or_path:
        data = _read_yaml(name_or_path)
    for item in overrides:
        _apply_override(data, item)
    return _build(Config, data, "")


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """Return ``config`` with dotted keys replaced (CLI flags such as --detector), type-checked."""
    data = _to_dict(config)
    for dotted, value in overrides.items():
        _set_path(data, dotted, value)
    return _build(Config, data, "")


def is_config_path(value: str) -> bool:
    """Whether a ``--config`` value names a file: it has a path separator or a .yaml/.yml suffix.

    Anything else is a preset name, so a file or folder called ``sports`` in the current directory
    never shadows the preset (write ``./sports`` to mean the file).
    """
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(sep in value for sep in seps) or Path(value).suffix.lower() in (".yaml", ".yml")


def _read_yaml(name_or_path: str) -> dict[str, Any]:
    if is_config_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ConfigError(f"config file '{path}' {what}")
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file '{path}' cannot be read: {exc}") from None
    else:
        preset = resources.files("posestream") / "configs" / f"{name_or_path}.yaml"
        if not preset.is_file():
            raise ConfigError(
                f"unknown config '{name_or_path}': presets are {', '.join(preset_names())}; "
                f"a YAML file needs a path separator or a .yaml/.yml suffix (e.g. ./{name_or_path}.yaml)"
            )
        text, where = preset.read_text(encoding="utf-8"), f"preset '{name_or_path}'"
    data = _safe_yaml(text, f"config {where}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {where}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {_show(item)}: expected section.key=value")
    try:
        value = _safe_yaml(raw, f"--set {_show(key)}") if raw.strip() else None
    except ConfigError as exc:
        if "is not valid YAML" not in str(exc):
            raise
        value = raw  # not YAML: the plain text
    _set_path(data, key.strip(), value)


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{_show_key(dotted)}: '{_show_key(part)}' is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return obj


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(data) - set(fields)))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"unknown config key '{_show_key(key)}' (known here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _check_range(fields[name], _coerce(hints[name], value, key), key)
    return cls(**kwargs)


def _check_range(f: dataclasses.Field, value: Any, key: str) -> Any:
    """Reject a number outside the field's stated range (NaN and infinities always)."""
    rng: Range | None = f.metadata.get("range")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if rng is None and math.isfinite(item):
            continue
        if rng is None or item not in rng:
            kind = "an integer" if isinstance(item, int) else "a number"
            where = rng.text if rng is not None else "a finite number"
            raise ConfigError(f"{key} = {_show(item)} is out of range: expected {kind}, {where} "
                              f"({f.metadata.get('help', '')})")  # fmt: skip
    return value


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors: list[ConfigError] = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(f"{key}: value {_show(value)} fits none of {tp}")
    if origin is Literal:
        allowed = [str(a) for a in args]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text not in allowed:
            raise ConfigError(f"{key}: expected one of {allowed}, got {_show(value)}")
        return text
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {_show(value)}")
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a bug in this module


# --------------------------------------------------------------------------- hostile input
MAX_YAML_NODES = 10_000  # a config has a few hundred values; aliases may not expand beyond this
MAX_ECHO = 200  # characters of a user's value echoed in a message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents whose aliases expand past ``MAX_YAML_NODES`` values.

    Anchors and aliases stay legal (a shared list used twice is fine), but the size is counted as
    if every alias were written out, on the composed node graph (cheap: aliases are shared nodes),
    before anything is built: a 400-byte "billion laughs" file is refused at once.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        _expanded_size(node, {}, set())
        return super().construct_document(node)


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _TooLarge("a value contains itself (recursive alias)")
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(n, memo, active) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, active) + _expanded_size(v, memo, active) for k, v in node.value)
    active.discard(key)
    if size > MAX_YAML_NODES:
        raise _TooLarge(f"expands to more than {MAX_YAML_NODES} values (anchors and aliases)")
    memo[key] = size
    return size


class _TooLarge(Exception):
    pass


def _safe_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _TooLarge as exc:
        raise ConfigError(f"{where} {exc}: refusing it") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer of more than 4300 digits
        raise ConfigError(f"{where} is not valid YAML: {_show(' '.join(str(exc).split()), quote=False)}") from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply") from None


def _show(value: Any, quote: bool = True) -> str:
    """A user's value for a message: repr (or str), on one line, at most ``MAX_ECHO`` characters."""
    text = repr(value) if quote else str(value)
    text = " ".join(text.split()) if "\n" in text else text
    if len(text) > MAX_ECHO:
        text = f"{text[: MAX_ECHO - 1]}… ({len(text)} characters)"
    return text


def _show_key(key: str) -> str:
    return _show(key, quote=False)
