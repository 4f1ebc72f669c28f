"""Crash-safe outputs: annotated video (PyAV, H.264) and keypoint files (JSON Lines, CSV).

Video: while running, the MP4 is written *fragmented* (``frag_keyframe+empty_moov``, one keyframe a
second), so a run that is killed outright still leaves a playable file holding everything up to the
last fragment. A clean ``close()`` then remuxes it (stream copy, no re-encode) into a regular MP4
with ``+faststart`` (index first: a browser starts playing before the download ends) and replaces
the file atomically. Codec H.264 (libx264, bundled in PyAV's FFmpeg), pixel format yuv420p (what
browsers decode), frame times copied from the source's pts.

Keypoints: one JSON object per line and per frame, written with a single ``write`` and flushed, so
a killed run leaves whole lines only (a reader may drop a final partial line at worst). ``pts`` is
written in full (the shortest decimal that reads back as the same float), so downstream outputs
keep exact frame times even at 240 fps, where 1/240 s has no short decimal form. Both keypoint
writers take the model's ``KeypointSet``: the CSV header names its keypoints (rows and header have
the same length for any K), every JSON line names the set and the first line also lists the
keypoint names in order.

Images (annotated photos): each written to a temporary name beside its target and renamed into
place, so a killed run never leaves half a picture under a real name.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from posestream.errors import InputError
from posestream.keypoints import KeypointSet
from posestream.types import Poses

__all__ = ["VideoWriter", "KeypointJsonlWriter", "KeypointCsvWriter", "JsonLinesWriter", "poses_to_records",
           "write_image"]

log = logging.getLogger(__name__)

FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof"


def _prepare_path(path: str | Path, what: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} output '{path}' is a directory (expected a file path)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} output '{path}': cannot create its folder ({exc.strerror})") from None
    return path


class VideoWriter:
    """H.264 MP4 writer. ``write(image_bgr, pts)``; ``close()`` finalises (see module docstring).

    size_wh: frame size; odd sizes are padded by one black row/column (yuv420p needs even sizes).
    time_base: the source stream's time base, so output pts equal input pts exactly.
    """

    def __init__(
        self,
        path: str | Path,
        size_wh: tuple[int, int],
        *,
        fps: float | None = None,
        time_base: Fraction | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = 0,
    ) -> None:
        self.path = _prepare_path(path, "video")
        self.size_wh = size_wh
        w, h = size_wh
        self._even_wh = (w + w % 2, h + h % 2)
        self.time_base = time_base or Fraction(1, 1000)
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        try:
            # flush_packets: hand every fragment to the OS at once (not kept in FFmpeg's I/O buffer).
            options = {"movflags": FRAGMENTED, "flush_packets": "1"}
            self._container = av.open(str(self.path), "w", format="mp4", options=options)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"video output '{self.path}' cannot be written: {exc}") from None
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = self._even_wh
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        # A keyframe (hence a fragment) about every second bounds what a killed run loses. No
        # B-frames: without reordering, output pts equal source pts (no edit-list shift) and the
        # encoder adds no frame delay.
        stream.options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(float(rate)))), "bf": "0"}
        if threads > 0:  # libx264's own default is 1.5 threads per core
            stream.codec_context.thread_count = int(threads)
            stream.options = {**stream.options, "threads": str(int(threads))}
        self._stream = stream
        self._last_pts = -1
        self.frames_written = 0
        self._closed = False

    @property
    def threads(self) -> int:
        """Encoder threads (0 = libx264's choice)."""
        return int(self._stream.codec_context.thread_count)

    def write(self, image_bgr: np.ndarray, pts: float) -> None:
        h, w = image_bgr.shape[:2]
        if (w, h) != self.size_wh:
            raise ValueError(f"VideoWriter: frame is {w}x{h}, the stream was opened for {self.size_wh}")
        if self._even_wh != (w, h):
            padded = np.zeros((self._even_wh[1], self._even_wh[0], 3), np.uint8)
            padded[:h, :w] = image_bgr
            image_bgr = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        ticks = int(round(pts / self.time_base))
        frame.pts = max(ticks, self._last_pts + 1)  # the encoder needs strictly increasing pts
        frame.time_base = self.time_base
        self._last_pts = frame.pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
        if self.frames_written:
            _remux_faststart(self.path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remux_faststart(path: Path) -> None:
    """Rewrite a fragmented MP4 as a regular one with the index in front (stream copy)."""
    tmp = path.with_name(path.name + ".faststart.tmp")
    try:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            in_stream = src.streams.video[0]
            out_stream = dst.add_stream_from_template(in_stream)
            for packet in src.demux(in_stream):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = out_stream
                dst.mux(packet)
        os.replace(tmp, path)
    except (av.FFmpegError, OSError):
        log.exception("could not remux '%s' with +faststart; the fragmented MP4 is kept (it plays)", path)
        tmp.unlink(missing_ok=True)


def write_image(path: str | Path, image_bgr: np.ndarray, *, jpeg_quality: int = 95) -> Path:
    """Encode ``image_bgr`` (H, W, 3) uint8 in the format of ``path``'s suffix; write it atomically."""
    path = _prepare_path(path, "image")
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, image_bgr, params)
    if not ok:
        raise InputError(f"image output '{path}': OpenCV cannot encode '{suffix}' files")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def poses_to_records(poses: Poses | None) -> list[dict]:
    """One dict per person: track_id, box_xyxy, box_score, keypoints [[x, y, score] x K] (NaN -> null)."""
    if poses is None:
        return []
    people = []
    kps = np.concatenate([poses.keypoints, poses.scores[..., None]], axis=-1)  # (N, K, 3)
    for i in range(len(poses)):
        people.append(
            {
                "track_id": int(poses.track_id[i]),
                "box_xyxy": [_num(v) for v in poses.xyxy[i]],
                "box_score": _num(poses.box_score[i]),
                "keypoints": [[_num(v) for v in kp] for kp in kps[i]],
            }
        )
    return people


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 3)


def _check_k(writer: str, keypoint_set: KeypointSet | None, poses: Poses | None) -> None:
    """ValueError when people carry keypoints that are not the writer's set (K = 0 is boxes only)."""
    k = 0 if poses is None else poses.keypoints.shape[1]
    if k and (keypoint_set is None or keypoint_set.num_keypoints != k):
        have = "no keypoint set" if keypoint_set is None else f"keypoint set {keypoint_set.describe()}"
        raise ValueError(f"{writer}: poses have {k} keypoints, the file was opened for {have}")


class KeypointJsonlWriter:
    """JSON Lines: ``{"frame", "pts", ["file",] "people": [{"track_id", "box_xyxy", "box_score", "keypoints"}]}``.

    Exactly one line per frame, nothing else. With a ``keypoint_set`` every line also has
    ``"keypoint_set": <name>`` and the first line ``"keypoint_names": [...]`` (the order of each
    person's ``keypoints``). ``extra`` is merged into every line, e.g. ``{"random_weights": true}``
    so no consumer of a random-weight run can miss it.
    """

    def __init__(self, path: str | Path, extra: dict | None = None,
                 keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        self.path = _prepare_path(path, "JSON")
        self.keypoint_set = keypoint_set
        self.extra = dict(extra or {})
        if keypoint_set is not None:
            self.extra["keypoint_set"] = keypoint_set.name
        self._first = True
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, frame_index: int, pts: float, poses: Poses | None, name: str | None = None) -> None:
        """name: the picture's file (image sources), written as ``"file"``."""
        _check_k("KeypointJsonlWriter", self.keypoint_set, poses)
        line = {"frame": frame_index, "pts": float(pts)}
        if name is not None:
            line["file"] = name
        line |= {"people": poses_to_records(poses), **self.extra}
        if self._first and self.keypoint_set is not None:
            line["keypoint_names"] = list(self.keypoint_set.keypoints)
        self._first = False
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")  # one write: whole lines only
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class JsonLinesWriter:
    """One JSON object per ``write``, as one line written at once and flushed (whole lines only)."""

    def __init__(self, path: str | Path, what: str = "JSON") -> None:
        self.path = _prepare_path(path, what)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class KeypointCsvWriter:
    """CSV, one row per person and frame: frame, pts, [file,] track_id, box, box_score, then x, y, score
    per keypoint.

    keypoint_set: names the keypoint columns (``<name>_x, <name>_y, <name>_score``); None = boxes
    only (a run without a pose model). Every row has as many cells as the header. ``with_file``: a
    ``file`` column (image sources) naming each row's picture.
    """

    def __init__(self, path: str | Path, keypoint_set: KeypointSet | None = None,
                 random_weights: bool = False, with_file: bool = False) -> None:  # fmt: skip
        self.path = _prepare_path(path, "CSV")
        self.keypoint_set = keypoint_set
        self.random_weights = random_weights
        self.with_file = with_file
        self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._file)
        cols = ["frame", "pts"] + (["file"] if with_file else []) + ["track_id", "x1", "y1", "x2", "y2", "box_score"]
        names = keypoint_set.keypoints if keypoint_set is not None else ()
        for name in names:
            cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
        self._num_keypoint_cols = 3 * len(names)
        if random_weights:  # a column nobody can miss; absent in normal runs
            cols.append("random_weights")
        self._csv.writerow(cols)
        self._file.flush()

    def write(self, frame_index: int, pts: float, poses: Poses | None, name: str | None = None) -> None:
        _check_k("KeypointCsvWriter", self.keypoint_set, poses)
        for person in poses_to_records(poses):
            head = [frame_index, float(pts)] + ([name] if self.with_file else [])
            row = head + [person["track_id"], *person["box_xyxy"], person["box_score"]]
            fixed = len(row)
            for kp in person["keypoints"]:
                row += kp
            row += [None] * (self._num_keypoint_cols - (len(row) - fixed))  # boxes only: empty cells
            if self.random_weights:
                row.append("true")
            self._csv.writerow(["" if v is None else v for v in row])
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
