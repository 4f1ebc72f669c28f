"""Configuration: YAML -> typed frozen dataclasses.

Every key is checked against the dataclass it lands in: an unknown key or a value of the wrong type
is a ``ConfigError`` naming its path (``tracker.lost_track_buffer: expected int, got 'abc'``).
Built-in presets live in ``posestream/configs/*.yaml`` and are named without the suffix
(``webcam``, ``sports``, ``bench``); a value with a path separator or a ``.yaml``/``.yml`` suffix is
a file, anything else a preset name (see ``is_config_path``); ``--set section.key=value`` overrides one value (the value
is parsed as YAML, so ``--set pose.providers=[cuda,cpu]`` works).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from posestream.errors import ConfigError

__all__ = [
    "Config", "SourceConfig", "PipelineConfig", "DetectorConfig", "TrackerConfig", "PoseConfig",
    "SmoothConfig", "RenderConfig", "ExerciseConfig", "OutputConfig", "load_config", "preset_names",
    "apply_overrides", "is_config_path",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class SourceConfig:
    live: Literal["auto", "true", "false"] = "auto"  # auto: cameras and network streams are live
    realtime: bool = False  # play a file at its native rate (as if it were a camera); implies live
    image_fps: float = 30.0  # frame rate assumed for image folders
    max_frames: int | None = None
    # Image folders, globs and stills are independent photos (no tracking, no smoothing, every
    # detection scoring detector.conf or more posed); true: a frame sequence, tracked like a video.
    track_images: bool = False


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    queue_size: int = 4  # capacity of each edge for files (lossless back-pressure)
    live_queue_size: int = 1  # capacity of each edge for live sources (drop-oldest)
    overflow: Literal["auto", "block", "drop_oldest"] = "auto"  # auto: drop_oldest iff live
    shutdown_timeout_s: float = 2.0
    # CPU thread budget (posestream.pipeline.budget): cores shared among the pose model, the
    # detector, the decoder and the encoder; 0 = auto (the process's usable cores; each consumer
    # with 0 threads gets 1 plus its share of the spare cores, the pose model most).
    cores: int = 0
    decode_threads: int = 0  # FFmpeg decoder threads; 0 = from the budget
    encode_threads: int = 0  # libx264 threads; 0 = from the budget


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    model: str | None = None  # YOLOX / Ultralytics ONNX; None = one box covering the whole frame
    # Kept low on purpose: ByteTrack's second association uses the low-score boxes (a person half
    # hidden) to keep their track alive; only boxes above tracker.new_track_threshold start a
    # person. With the tracker disabled, boxes below tracker.track_activation_threshold are dropped.
    score_threshold: float = 0.1
    # A box scoring at least this is a person when nothing tracks it (photos, tracker.enabled false).
    # 0.3: YOLOX-Nano's person recall on the COCO val subset is 0.685 there (0.648 at 0.4).
    conf: float = 0.3
    nms_iou_threshold: float = 0.45  # boxes overlapping more than this are duplicates
    detect_every: int = 1  # run the detector every N frames; the tracker predicts boxes between
    # Keypoint-driven boxes (tracking/keypoint_boxes.py): between detections a confidently posed
    # person is posed in the box of their last keypoints, and the detector runs every detect_every
    # frames or at once when someone's confidence drops (live: less often while pose falls behind).
    keypoint_boxes: bool = False
    keypoint_min_confidence: float = 0.5  # fraction of keypoints above smooth.score_threshold
    max_people: int = 100
    providers: tuple[str, ...] = ("cpu",)
    threads: int = 0  # inference threads; 0 = from the budget (pipeline.cores)
    # auto: OpenVINO on the CPU (when installed), onnxruntime with GPU providers.
    engine: Literal["auto", "onnxruntime", "openvino"] = "auto"
    # auto: bf16 where the CPU has AVX512_BF16 / AMX (OpenVINO), else fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """ByteTrack (posestream.tracking.bytetrack); names follow supervision's where they exist."""

    enabled: bool = True
    track_activation_threshold: float = 0.4  # split: above = first association, below = second
    low_score_threshold: float = 0.1  # boxes below this are ignored entirely
    new_track_threshold: float = 0.5  # an unmatched box starts a track only above this
    minimum_matching_threshold: float = 0.8  # max cost (1 - IoU x score) in the first association
    second_match_threshold: float = 0.5  # max cost (1 - IoU) for low-score boxes
    lost_track_buffer: int = 30  # frames (at frame_rate) a lost track waits to be found again
    # Converts lost_track_buffer to seconds (time-based, drop-proof) and sets the Kalman noise's time
    # unit. None: the source's nominal frame rate (so the buffer is lost_track_buffer of its frames).
    frame_rate: float | None = None
    minimum_consecutive_frames: int = 1  # frames before a new track is reported
    # Report a lost track at its motion-predicted box for this long after its last detection, so
    # a missed detection (backlight, blur) does not cost a pose. 0 = off (live: no guessing).
    coast_lost_s: float = 0.0
    # Recorded footage (not live): hold this many seconds of frames back so that a track, once
    # confirmed, is also reported in them from the first frame its person was detected (gaps up to
    # coast_lost_s interpolated). Costs that much delay and memory (frames held). 0 = off.
    backfill_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PoseConfig:
    model: str | None = None  # an ONNX file, a known name (`posestream models`) or none; or variant + weights
    variant: str | None = None  # s | b | l | h (with `weights`, runs through PyTorch)
    weights: str | None = None  # path, known name (vitpose-b-coco), Hub id / transformers folder, 'none'
    decoder: Literal["classic", "simple"] = "classic"  # for random weights (files say their own)
    keypoints: str | None = None  # keypoint set the model must predict (coco, wholebody, ...); None = its own
    expert: str | None = None  # ViTPose+ expert: coco | aic | mpii | ap10k | apt36k | wholebody
    providers: tuple[str, ...] = ("cpu",)  # onnxruntime: cpu | cuda | tensorrt
    device: str = "cpu"  # torch
    # ONNX files: auto = OpenVINO on the CPU (when installed), onnxruntime with GPU providers.
    engine: Literal["auto", "onnxruntime", "openvino"] = "auto"
    # auto = the fastest precision this CPU runs natively without measurable loss: bf16 where it has
    # AVX512_BF16 / AMX (OpenVINO, torch), else fp32. int8 quantises an fp32 file once (cached),
    # calibrated on `calibration`; fp16: torch on a GPU, or a file exported as fp16.
    precision: Literal["auto", "fp32", "bf16", "int8", "fp16"] = "auto"
    calibration: str | None = None  # folder with images/ + person_keypoints.json (int8 only)
    threads: int = 0  # inference threads per pose worker; 0 = from the budget (pipeline.cores)
    # Pose workers: copies of the pose stage (each its own session) on frames in turn, outputs put
    # back in frame order. Lossless sources only; keypoint-driven boxes need 1 (previous frame).
    workers: int = 1
    # Pad each frame's batch up to one of these sizes so GPU engines (CUDA graphs, TensorRT
    # profiles) are not re-planned for every people count. Empty = auto: (1, 2, 4, 8, 16, 32, 64)
    # on GPU, no padding on CPU, where padded crops cost full compute (measured: ViTPose-S on ORT
    # CPU takes ~0.9 s for 3 crops and ~1.2 s for 4; padding 9 people to 16 nearly doubles it).
    batch_buckets: tuple[int, ...] = ()
    # The fast GPU path for PyTorch models; "auto" = on when the model runs on CUDA.
    compile: Literal["auto", "true", "false"] = "auto"  # torch.compile (the first run compiles, ~1 min)
    cuda_graphs: Literal["auto", "true", "false"] = "auto"  # one captured CUDA graph per batch bucket
    device_pipeline: Literal["auto", "true", "false"] = "auto"  # warp, normalise, decode on the GPU too
    # Cross-frame batching: people of consecutive frames in one model call. Lossless sources only
    # (files, image folders); a live source always runs each frame at once. "auto" = on GPU.
    cross_frame: Literal["auto", "true", "false"] = "auto"
    cross_frame_crops: int = 64  # a batch runs once it holds this many people (a CUDA-graph bucket)...
    cross_frame_frames: int = 32  # ...or this many frames...
    cross_frame_wait_s: float = 0.5  # ...or when its oldest frame has waited this long (checked per frame)
    # Replay: poses from an earlier run's keypoints JSON Lines (matched by frame index, checked by
    # pts) instead of detector + tracker + model; smoothing, rendering and analyses run again.
    keypoints_from: str | None = None


@dataclass(frozen=True, slots=True)
class SmoothConfig:
    filter: Literal["none", "one_euro", "kalman"] = "one_euro"
    score_threshold: float = 0.3  # keypoints below this do not move the estimate
    # Defaults chosen by benchmarks/smoothing_tuning.py (synthetic 30 fps tracks, 2 px jitter):
    # one-euro removes 72% of jitter at rest and reaches 90% of a step in 2 frames.
    min_cutoff: float = 2.5  # one-euro: Hz; lower = smoother when still, more lag
    beta: float = 0.01  # one-euro: speed coefficient (1/px); higher = less lag when moving fast
    d_cutoff: float = 1.0  # one-euro: Hz, cutoff for the speed estimate
    process_var: float = 1e5  # kalman: white-noise acceleration variance (px/s^2)^2; higher = less lag
    measurement_var: float = 4.0  # kalman: px^2 at score 1; R = measurement_var / score^2
    forget_after_s: float = 1.0  # drop a track's filter state when unseen this long


@dataclass(frozen=True, slots=True)
class RenderConfig:
    enabled: bool = True
    keypoint_threshold: float = 0.3  # keypoints scoring below this are not drawn
    draw_boxes: bool = True
    # fps, latency and people count, in a strip above the picture. None (auto): in live views
    # (--serve, --show) only; true: also burnt into saved videos and pictures; false: nowhere.
    hud: bool | None = None


@dataclass(frozen=True, slots=True)
class ExerciseConfig:
    """Rep counting and form cues (posestream.exercises) for every tracked person."""

    name: str | None = None  # built-in (squat, push_up, lunge, biceps_curl) or a YAML file; None = off
    score_threshold: float = 0.3  # keypoints below this never move a phase nor fire a cue
    forget_after_s: float = 5.0  # a track unseen this long loses its count


@dataclass(frozen=True, slots=True)
class OutputConfig:
    video: str | None = None  # .mp4 (H.264); an image suffix (.png, .jpg) for a single still
    image_dir: str | None = None  # image sources: annotated pictures under their own names
    serve: str | None = None  # HOST:PORT of a live view page (MJPEG + stats), e.g. 127.0.0.1:8080
    show: bool = False  # a desktop window (needs an OpenCV build with a GUI)
    json: str | None = None
    csv: str | None = None
    reps: str | None = None  # rep events as JSON Lines (one line per completed rep), with exercise.name
    crf: int = 20  # H.264 quality: lower = better and bigger
    preset: str = "veryfast"


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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {where} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {where}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set '{item}': expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    _set_path(data, key.strip(), value)


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: '{part}' is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return obj


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"unknown config key '{key}' (known here: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


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
        raise errors[0] if len(errors) == 1 else ConfigError(f"{key}: value {value!r} fits none of {tp}")
    if origin is Literal:
        allowed = [str(a) for a in args]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text not in allowed:
            raise ConfigError(f"{key}: expected one of {allowed}, got {value!r}")
        return text
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a bug in this module
