"""Reading frames from files, image folders, cameras and network streams, on PyAV.

``open_source(spec)`` recognises what the user named:

===========================  =========  =================================================
spec                         kind       notes
===========================  =========  =================================================
``0``, ``/dev/video2``       camera     v4l2 on Linux (avfoundation on macOS); live
``rtsp://``, ``rtmp://``,    stream     live
``udp://``, ``srt://``
``http(s)://...``            stream     live unless the path looks like a video file
a directory or a glob        images     sorted by name; pts = index / image_fps
any other path               file       any container/codec FFmpeg reads; lossless
===========================  =========  =================================================

Frame times come from the container's pts (``frame.time``), so variable frame rate stays correct;
for cameras and streams they are made relative to the first frame.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from posestream.errors import InputError
from posestream.types import Frame

__all__ = ["SourceInfo", "FrameReader", "open_source", "source_files", "IMAGE_EXTENSIONS"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "srt://", "tcp://")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts")
NETWORK_TIMEOUT_US = "5000000"  # FFmpeg socket timeout: a dead URL fails in 5 s instead of hanging


@dataclass(frozen=True, slots=True)
class SourceInfo:
    uri: str
    kind: str  # 'file' | 'images' | 'camera' | 'stream'
    live: bool
    size_wh: tuple[int, int]
    fps: float | None  # nominal rate (informational: timing comes from pts)
    frame_count: int | None  # known or estimated number of frames; None for live sources
    time_base: Fraction | None  # the source stream's time base (the writer reuses it)


class FrameReader:
    """Iterates ``Frame`` objects from one source. Open with ``open_source``; close when done."""

    def __init__(self, info: SourceInfo, frames: Iterator[Frame], closer: callable, stream=None) -> None:
        self.info = info
        self._frames = frames
        self._closer = closer
        self.stream = stream  # the PyAV video stream (None for image folders)

    @property
    def decode_threads(self) -> int:
        """Threads the decoder was given (1 for image folders: read on the caller's thread)."""
        return int(self.stream.codec_context.thread_count) if self.stream is not None else 1

    def read(self) -> Frame | None:
        """The next frame, or None at end of stream."""
        return next(self._frames, None)

    def close(self) -> None:
        self._closer()

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(
    spec: str,
    *,
    image_fps: float = 30.0,
    camera_options: dict[str, str] | None = None,
    max_frames: int | None = None,
    threads: int = 0,
) -> FrameReader:
    """Open ``spec`` (see module docstring). Raises ``InputError`` naming the source on failure.

    threads: FFmpeg decoder threads (0 = FFmpeg's choice, one per core); 1 decodes on the
    reading thread only.
    """
    spec = str(spec)
    if spec.isdigit() or spec.startswith("/dev/video"):
        device = f"/dev/video{spec}" if spec.isdigit() else spec
        if sys.platform == "darwin":
            device, fmt = (spec if spec.isdigit() else device), "avfoundation"
        else:
            fmt = "v4l2"
        return _open_av(device, "camera", True, fmt, camera_options or {}, max_frames, threads)
    if spec.startswith(LIVE_SCHEMES):
        return _open_av(spec, "stream", True, None, {"timeout": NETWORK_TIMEOUT_US}, max_frames, threads)
    if spec.startswith(("http://", "https://")):
        live = not spec.lower().split("?")[0].endswith(VIDEO_SUFFIXES)
        return _open_av(spec, "stream", live, None, {"timeout": NETWORK_TIMEOUT_US}, max_frames, threads)
    path = Path(spec)
    if path.is_dir() or any(c in spec for c in "*?["):
        return _open_images(spec, image_fps, max_frames)
    if not path.exists():
        raise InputError(f"source '{spec}' does not exist (expected a video file, image folder, camera index or URL)")
    if not os.access(path, os.R_OK):
        raise InputError(f"source '{spec}' is not readable (check its permissions)")
    return _open_av(spec, "file", False, None, {}, max_frames, threads)


def _open_av(
    uri: str, kind: str, live: bool, fmt: str | None, options: dict[str, str], max_frames: int | None,
    threads: int = 0,
) -> FrameReader:
    try:
        container = av.open(uri, format=fmt, options=options, timeout=10.0 if kind != "file" else None)
    except (av.FFmpegError, OSError) as exc:
        hint = " (not a video file, or truncated)" if kind == "file" else ""
        raise InputError(f"cannot open {kind} '{uri}': {_reason(exc)}{hint}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{kind} '{uri}' has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads in FFmpeg's decoder
    stream.codec_context.thread_count = int(threads)  # 0 = FFmpeg's choice (one per core)
    frames = _decode(container, stream, uri, kind, live, max_frames)
    try:
        first = next(frames)  # decode one frame now: a corrupt or empty file fails here, before the graph
    except StopIteration:
        container.close()
        raise InputError(f"{kind} '{uri}' contains no decodable video frame") from None
    fps = float(stream.average_rate) if stream.average_rate else None
    count = None
    if not live:
        count = stream.frames or None
        if count is None and stream.duration and stream.time_base and fps:
            count = int(round(float(stream.duration * stream.time_base) * fps))
        if max_frames is not None:
            count = min(count, max_frames) if count else max_frames
    info = SourceInfo(uri, kind, live, first.size_wh, fps, count, stream.time_base)
    return FrameReader(info, _chain(first, frames), container.close, stream)


def _decode(container, stream, uri: str, kind: str, live: bool, max_frames: int | None) -> Iterator[Frame]:
    pts0: float | None = None
    index = 0
    try:
        for av_frame in container.decode(stream):
            if max_frames is not None and index >= max_frames:
                return
            image = av_frame.to_ndarray(format="bgr24")
            t_capture = time.monotonic()
            if av_frame.time is not None:
                pts = float(av_frame.time)
            else:  # no timestamps (raw streams): fall back to the nominal rate
                pts = index / float(stream.average_rate or 30)
            if live:  # cameras/streams: clock starts at the first frame
                pts0 = pts if pts0 is None else pts0
                pts -= pts0
            yield Frame(index=index, pts=pts, t_capture=t_capture, image=image)
            index += 1
    except av.FFmpegError as exc:
        raise InputError(f"{kind} '{uri}' is corrupt or truncated at frame {index}: {_reason(exc)}") from None
    declared = stream.frames  # 0 when the container does not say
    if not live and declared and index < declared and (max_frames is None or index < max_frames):
        raise InputError(f"{kind} '{uri}' is truncated: it declares {declared} frames, {index} could be decoded")


def source_files(spec: str) -> list[str]:
    """The local files a source reads (a video file; every image of a folder or glob), else []."""
    spec = str(spec)
    if spec.isdigit() or spec.startswith(("/dev/video", *LIVE_SCHEMES, "http://", "https://")):
        return []
    if Path(spec).is_dir() or any(c in spec for c in "*?["):
        return [str(p) for p in _image_paths(spec)]
    return [spec] if Path(spec).exists() else []


def _image_paths(spec: str) -> list[Path]:
    if Path(spec).is_dir():
        return sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_EXTENSIONS)


def _open_images(spec: str, fps: float, max_frames: int | None) -> FrameReader:
    paths = _image_paths(spec)
    if not paths:
        raise InputError(f"image source '{spec}' matches no image file ({', '.join(IMAGE_EXTENSIONS)})")
    if max_frames is not None:
        paths = paths[:max_frames]
    first = _imread(paths[0])

    def frames() -> Iterator[Frame]:
        for i, p in enumerate(paths):
            image = first if i == 0 else _imread(p)
            yield Frame(index=i, pts=i / fps, t_capture=time.monotonic(), image=image)

    size_wh = (first.shape[1], first.shape[0])
    info = SourceInfo(spec, "images", False, size_wh, fps, len(paths), Fraction(1, 1000))
    return FrameReader(info, frames(), lambda: None)


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"image '{path}' cannot be read (not an image, or corrupt)")
    return image


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    yield from rest


def _reason(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return msg.split(": '")[0] if msg else type(exc).__name__
