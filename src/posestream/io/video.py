"""Reading frames from files, image folders, cameras and network streams, on PyAV.

``open_source(spec)`` recognises what the user named:

===========================  =========  =================================================
spec                         kind       notes
===========================  =========  =================================================
``0``, ``/dev/video2``       camera     v4l2 on Linux (avfoundation on macOS); live
``rtsp://``, ``rtmp://``,    stream     live
``udp://``, ``srt://``
``http(s)://...``            stream     a recording (the container states a duration) is
                                        read like a file, every frame; else live
a directory or a glob        images     sorted by name; pts = index / image_fps
a still (.jpg, .png, ...)    images     one picture
any other path               file       any container/codec FFmpeg reads; lossless
===========================  =========  =================================================

Frame times come from the container's pts (``frame.time``), so variable frame rate stays correct;
for cameras and streams they are made relative to the first frame. Frames come out upright: the
display matrix's rotation (phone videos) is applied (``upright``). Damaged files are decoded the
way FFmpeg does (``_Decoder``). Frames of image sources carry their file name (``Frame.name``):
relative to the folder, to the glob's fixed base, or the bare name of a still.
"""

from __future__ import annotations

import glob
import logging
import math
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

    def __init__(self, info: SourceInfo, frames: Iterator[Frame], closer: callable, stream=None,
                 decoder=None) -> None:  # fmt: skip
        self.info = info
        self._frames = frames
        self._closer = closer
        self.stream = stream  # the PyAV video stream (None for image folders)
        self._decoder = decoder

    @property
    def decode_threads(self) -> int:
        """Threads the decoder was given (1 for image folders: read on the caller's thread)."""
        return int(self.stream.codec_context.thread_count) if self.stream is not None else 1

    @property
    def skipped_packets(self) -> int:
        """Corrupt packets skipped so far (0 for image folders)."""
        return len(self._decoder.skipped) if self._decoder is not None else 0

    @property
    def truncated(self) -> bool:
        """The file ended before its declared length (every decodable frame was still read)."""
        return bool(self._decoder is not None and self._decoder.truncated)

    def describe(self) -> list[str]:
        """Lines for the run's summary about damage in the source (none when it was clean)."""
        lines = []
        if self.skipped_packets:
            lines.append(f"source {self.info.uri}: {self.skipped_packets} corrupt packet(s) skipped, "
                         f"{self._decoder.index} frames decoded")  # fmt: skip
        if self.truncated:
            lines.append(f"source {self.info.uri}: cut short; all {self._decoder.index} decodable frames were read")
        return lines

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
    strict: bool = False,
) -> FrameReader:
    """Open ``spec`` (see module docstring). Raises ``InputError`` naming the source on failure.

    threads: FFmpeg decoder threads (0 = FFmpeg's choice, one per core); 1 decodes on the
    reading thread only.
    strict: a corrupt packet or a file shorter than it declares is an error (``InputError``, raised
    by the reader when it gets there) instead of a warning; see ``_Decoder``.
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
    if spec.startswith(("http://", "https://")):  # live unless the container states a duration
        return _open_av(spec, "stream", None, None, {"timeout": NETWORK_TIMEOUT_US}, max_frames, threads, strict)
    path = Path(spec)
    still = path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    if path.is_dir() or still or (any(c in spec for c in "*?[") and not path.exists()):
        return _open_images(spec, image_fps, max_frames)
    if not path.exists():
        raise InputError(f"source '{spec}' does not exist (expected a video file, image folder, camera index or URL)")
    if not os.access(path, os.R_OK):
        raise InputError(f"source '{spec}' is not readable (check its permissions)")
    return _open_av(spec, "file", False, None, {}, max_frames, threads, strict)


def _open_av(
    uri: str, kind: str, live: bool | None, fmt: str | None, options: dict[str, str], max_frames: int | None,
    threads: int = 0,
    strict: bool = False,
) -> FrameReader:
    """live=None: decide from the container: a stated duration makes it a file (every frame read)."""
    try:
        container = av.open(uri, format=fmt, options=options, timeout=10.0 if kind != "file" else None)
    except (av.FFmpegError, OSError) as exc:
        hint = " (not a video file, or truncated)" if kind == "file" else ""
        raise InputError(f"cannot open {kind} '{uri}': {_reason(exc)}{hint}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{kind} '{uri}' has no video stream")
    if live is None:
        live = not (container.duration and container.duration > 0)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads in FFmpeg's decoder
    stream.codec_context.thread_count = int(threads)  # 0 = FFmpeg's choice (one per core)
    decoder = _Decoder(container, stream, uri, kind, live, max_frames, strict)
    frames = iter(decoder)
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
    return FrameReader(info, _chain(first, frames), container.close, stream, decoder)


class _Decoder:
    """Frames of one PyAV video stream, decoded the way FFmpeg's command line does.

    A packet the decoder rejects is skipped and counted (a warning names the frame and time; the
    decoder conceals what depends on it) and decoding goes on to the end of the file; a file cut
    short keeps every frame that could be decoded, with a warning. The decoder is flushed at the
    end, so the frames its threads still hold are not lost. ``strict``: the first damaged packet
    or a short file is an ``InputError`` instead.
    """

    MAX_WARNINGS = 3  # then one summary at the end

    def __init__(self, container, stream, uri: str, kind: str, live: bool, max_frames: int | None,
                 strict: bool = False) -> None:  # fmt: skip
        self.container, self.stream = container, stream
        self.uri, self.kind, self.live = uri, kind, live
        self.max_frames = max_frames
        self.strict = strict
        self.index = 0
        self.skipped: list[float] = []  # media time (s) of each skipped packet
        self.truncated = False
        self._pts0: float | None = None

    def __iter__(self) -> Iterator[Frame]:
        stream = self.stream
        try:
            for packet in self.container.demux(stream):
                for av_frame in self._decode(packet):
                    if self.max_frames is not None and self.index >= self.max_frames:
                        return
                    yield self._frame(av_frame)
        except av.FFmpegError as exc:  # the container itself is damaged or cut short
            if self.live or self.strict:
                raise InputError(f"{self.kind} '{self.uri}' is corrupt or truncated at frame {self.index}: "
                                 f"{_reason(exc)}") from None  # fmt: skip
            self.truncated = True
            log.warning("%s '%s' is damaged or cut short after frame %d (%s); the frames decoded so far are kept",
                        self.kind, self.uri, self.index, _reason(exc))  # fmt: skip
            for av_frame in self._decode(None):  # flush: frames the decoder still holds
                if self.max_frames is not None and self.index >= self.max_frames:
                    return
                yield self._frame(av_frame)
        self._finish()

    def _decode(self, packet) -> list:
        try:
            return self.stream.decode(packet)
        except EOFError:  # flushed already
            return []
        except av.FFmpegError as exc:
            t = float(packet.pts * packet.time_base) if packet is not None and packet.pts is not None else None
            where = f"frame {self.index}" + (f" ({t:.3f} s)" if t is not None else "")
            if self.strict:
                raise InputError(f"{self.kind} '{self.uri}' has a corrupt packet at {where}: {_reason(exc)} "
                                 "(--strict)") from None  # fmt: skip
            self.skipped.append(t if t is not None else math.nan)
            if len(self.skipped) <= self.MAX_WARNINGS:
                log.warning("%s '%s': corrupt packet at %s skipped (%s); decoding goes on", self.kind, self.uri,
                            where, _reason(exc))  # fmt: skip
            return []

    def _frame(self, av_frame) -> Frame:
        image = upright(av_frame.to_ndarray(format="bgr24"), av_frame.rotation)
        t_capture = time.monotonic()
        if av_frame.time is not None:
            pts = float(av_frame.time)
        else:  # no timestamps (raw streams): fall back to the nominal rate
            pts = self.index / float(self.stream.average_rate or 30)
        if self.live:  # cameras/streams: clock starts at the first frame
            self._pts0 = pts if self._pts0 is None else self._pts0
            pts -= self._pts0
        frame = Frame(index=self.index, pts=pts, t_capture=t_capture, image=image)
        self.index += 1
        return frame

    def _finish(self) -> None:
        if self.skipped:
            times = [t for t in self.skipped if not math.isnan(t)]
            span = f" between {min(times):.3f} s and {max(times):.3f} s" if times else ""
            log.warning("%s '%s': %d corrupt packet(s) skipped%s; %d frames decoded (--strict stops at the first "
                        "instead)", self.kind, self.uri, len(self.skipped), span, self.index)  # fmt: skip
        declared = self.stream.frames  # 0 when the container does not say
        short = declared and self.index < declared and (self.max_frames is None or self.index < self.max_frames)
        if not self.live and short and not self.skipped and not self.truncated:
            message = f"{self.kind} '{self.uri}' is truncated: it declares {declared} frames, {self.index} could be decoded"
            if self.strict:
                raise InputError(message + " (--strict)")
            self.truncated = True
            log.warning("%s; all %d are used", message, self.index)


_ROTATE_CCW = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """The image as players show it: rotated ``rotation`` degrees counter-clockwise.

    ``rotation`` is PyAV's ``VideoFrame.rotation``, read from the display matrix (phones record
    portrait video as landscape pixels plus this tag). Keypoints, boxes and the annotated video
    are then all in upright pixels, and the output needs no tag. Angles are rounded to a quarter
    turn (the only ones cameras write).
    """
    turns = round((rotation or 0) / 90) % 4
    return image if turns == 0 else cv2.rotate(image, _ROTATE_CCW[turns])


def source_files(spec: str) -> list[str]:
    """The local files a source reads (a video file; every image of a folder or glob), else []."""
    spec = str(spec)
    if spec.isdigit() or spec.startswith(("/dev/video", *LIVE_SCHEMES, "http://", "https://")):
        return []
    if Path(spec).is_dir() or (any(c in spec for c in "*?[") and not Path(spec).exists()):
        return [str(p) for p in _image_paths(spec)[1]]
    return [spec] if Path(spec).exists() else []


def _image_paths(spec: str) -> tuple[Path, list[Path]]:
    """(the folder names are relative to, the images in order) of a folder, a still or a glob."""
    if Path(spec).is_dir():
        base = Path(spec)
        return base, sorted(p for p in base.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if Path(spec).is_file():  # a still
        return Path(spec).parent, [Path(spec)]
    paths = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_EXTENSIONS)
    base = Path(os.path.commonpath(paths)) if paths else Path(".")
    return (base.parent if len(paths) == 1 else base), paths  # one match: its folder, not itself


def _open_images(spec: str, fps: float, max_frames: int | None) -> FrameReader:
    base, paths = _image_paths(spec)
    if not paths:
        raise InputError(f"image source '{spec}' matches no image file ({', '.join(IMAGE_EXTENSIONS)})")
    if max_frames is not None:
        paths = paths[:max_frames]
    first = _imread(paths[0])

    def frames() -> Iterator[Frame]:
        for i, p in enumerate(paths):
            image = first if i == 0 else _imread(p)
            name = p.relative_to(base).as_posix()
            yield Frame(index=i, pts=i / fps, t_capture=time.monotonic(), image=image, name=name)

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
