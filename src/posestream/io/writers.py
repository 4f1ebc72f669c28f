"""Crash-safe outputs: annotated video (PyAV, H.264) and keypoint files (JSON Lines, CSV).

Every writer writes through a claimed, locked ``OutputFile`` (``io.outputs``: the preflight, the
lock, truncation only once the run starts; read its docstring for why outputs are written in place).
A write error (disk full, EIO) raises ``OutputError`` naming the output and path, after the file has
been cut back to its last complete unit, so what is kept always decodes / parses.

Video, while running: a *fragmented* MP4 (``empty_moov``, one fragment per frame, ``flush_packets``)
whose header is written when the writer opens. Each ``mux`` hands the previous frame's fragment to
the OS, so a run killed outright (SIGKILL) leaves a file that decodes without error up to the last
frame the encoder had released. What it loses is the encoder's delay: libx264's look-ahead plus its
frame threads (11 frames at ``veryfast``; the look-ahead is capped at half a second of frames, so
slow presets do not hold seconds of video in memory). Why not the usual one fragment per keyframe:
today's loss was a whole GOP (1 s) *plus* the look-ahead, and a run killed in its first second left
no file at all (the header was only written with the first packet, which x264 releases late). The
price of a fragment per frame is ~100 bytes of ``moof`` per frame, and only in a killed file: a
clean close (also Ctrl-C / SIGTERM) remuxes it (stream copy, no re-encode) into a regular MP4 with
``+faststart`` (index first, so a browser plays before the download ends), copies the source's
audio into it (stream copy for AAC / MP3 / Opus, else re-encoded to AAC), and replaces the file
atomically. ``fsync`` about once a second bounds what a power cut loses.

Codec H.264 (libx264, bundled in PyAV's FFmpeg), yuv420p (what browsers decode), so odd sizes are
padded to even with one black row/column (and the writer says so); frame times are the source's pts.
Frames of another size than the first (a folder of mixed-size photos) are letterboxed into it.

Keypoints: one JSON object per line and per frame (CSV: one row per person), each written with one
``os.write`` (no Python buffer), so a killed run leaves whole lines only.
``pts`` is written in full (the shortest decimal that reads back as the same float), so downstream
outputs keep exact frame times even at 240 fps, where 1/240 s has no short decimal form.
Both keypoint writers take the model's ``KeypointSet``: the CSV header names its keypoints (rows and
header have the same length for any K), every JSON line names the set and the first line also
lists the keypoint names in order.

Images (annotated photos): each written to a temporary name beside its target and renamed into
place, so a killed run never leaves half a picture under a real name.
"""

from __future__ import annotations

import csv
import errno
import heapq
import io
import json
import logging
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from posestream.errors import OutputError
from posestream.io.outputs import OutputFile, check_outputs, claim_outputs
from posestream.keypoints import KeypointSet
from posestream.types import Poses

__all__ = ["VideoWriter", "KeypointJsonlWriter", "KeypointCsvWriter", "JsonLinesWriter", "poses_to_records",
           "open_output", "write_image"]  # fmt: skip

log = logging.getLogger(__name__)

FRAGMENTED = "frag_every_frame+empty_moov+default_base_moof"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # fmt: skip
# libx264's rc-lookahead per preset (x264 common/base.c); capped below at half a second of frames.
_PRESET_LOOKAHEAD = dict(zip(X264_PRESETS, (0, 0, 10, 20, 30, 40, 50, 60, 60, 60)))
AUDIO_COPY = ("aac", "mp3", "opus")  # played by every browser from an MP4: copied as they are


def open_output(target: str | os.PathLike | OutputFile, what: str) -> OutputFile:
    """A claimed output for ``target``: used as is, or a path checked and claimed here (tests, tools)."""
    if isinstance(target, OutputFile):
        return target
    paths = check_outputs({what: target})
    return claim_outputs(paths).files[what]


class _FragmentFile(io.RawIOBase):
    """The file object PyAV writes the MP4 through: plain ``os.write`` on the claimed descriptor.

    After a failed write it refuses every further write, so the muxer cannot append after the point
    where the file is cut back (the descriptor's offset would leave a hole of zeros).
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.failed: OSError | None = None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.failed is not None:
            raise self.failed
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        except OSError as exc:
            self.failed = exc
            raise
        return done

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self.fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_CUR)


class VideoWriter:
    """H.264 MP4 writer. ``write(image_bgr, pts)``; ``close()`` finalises (see module docstring).

    target: an output path, or an ``OutputFile`` claimed by the run's preflight.
    size_wh: frame size; odd sizes are padded by one black row/column (yuv420p needs even sizes).
    time_base: the source stream's time base, so output pts equal input pts exactly.
    audio_from: a local media file whose first audio track is copied in at ``close()``.

    ``state`` says what the file is: "writing", "finalised" (regular MP4), "fragmented" (the
    fragmented MP4 was kept: it plays), or "failed" (a write error; cut back to ``frames_kept``).
    """

    def __init__(
        self,
        target: str | Path | OutputFile,
        size_wh: tuple[int, int],
        *,
        fps: float | None = None,
        time_base: Fraction | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = 0,
        audio_from: str | None = None,
    ) -> None:
        self.output = open_output(target, "video")
        self.path = self.output.path
        self.size_wh = size_wh
        self.audio_from = audio_from
        w, h = size_wh
        self._even_wh = (w + w % 2, h + h % 2)
        if self._even_wh != size_wh:
            log.warning("video '%s': the frames are %dx%d; the video is padded to %dx%d with black "
                        "(H.264 in yuv420p, what players decode, needs even sizes)", self.path, w, h,
                        *self._even_wh)  # fmt: skip
        self.time_base = time_base or Fraction(1, 1000)
        self.rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self.frames_written = 0  # frames handed to the encoder
        self.frames_kept = 0  # frames whose fragment is complete in the file
        self.letterboxed = 0
        self.state = "writing"
        self._last_pts = -1
        self._last_pts_s: float | None = None
        self._muxed = 0  # packets handed to the muxer; all but the last are in complete fragments
        self._good_size = 0  # file size at the end of the last complete fragment
        self._file = _FragmentFile(self.output.begin())
        try:
            self._container = av.open(self._file, "w", format="mp4",
                                      options={"movflags": FRAGMENTED, "flush_packets": "1"})  # fmt: skip
            stream = self._container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = self._even_wh
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
            # A keyframe about every second (seeking); no B-frames: without reordering, output pts
            # equal source pts (no edit-list shift) and the encoder adds no reorder delay.
            lookahead = min(_PRESET_LOOKAHEAD.get(preset, 60), max(1, round(float(self.rate) / 2)))
            stream.options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(float(self.rate)))),
                              "bf": "0", "rc-lookahead": str(lookahead)}  # fmt: skip
            if threads > 0:  # libx264's own default is 1.5 threads per core
                stream.codec_context.thread_count = int(threads)
                stream.options = {**stream.options, "threads": str(int(threads))}
            self._stream = stream
            self._container.start_encoding()  # the header now: a file killed early still opens
        except OSError as exc:
            self._fail()
            raise self.output.error(exc) from None
        except av.FFmpegError as exc:
            self._fail()
            raise OutputError(f"cannot start the video encoder for '{self.path}': {exc}") from None
        self._good_size = self._file.tell()

    @property
    def threads(self) -> int:
        """Encoder threads (0 = libx264's choice)."""
        return int(self._stream.codec_context.thread_count)

    def write(self, image_bgr: np.ndarray, pts: float, label: str | None = None) -> None:
        """Encode one frame. label: how to name the frame in a message (e.g. an image's name)."""
        if self.state != "writing":
            raise OutputError(f"video output '{self.path}' is {self.state}; no more frames can be written")
        h, w = image_bgr.shape[:2]
        if (w, h) != self.size_wh:
            if not self.letterboxed:
                log.warning("video '%s': %s is %dx%d; it is letterboxed into the video's %dx%d (the first "
                            "frame's size), and so is every frame of another size", self.path,
                            label or "a frame", w, h, *self.size_wh)  # fmt: skip
            self.letterboxed += 1
            image_bgr = letterbox(image_bgr, self.size_wh)
        if self._even_wh != self.size_wh:
            padded = np.zeros((self._even_wh[1], self._even_wh[0], 3), np.uint8)
            padded[: self.size_wh[1], : self.size_wh[0]] = image_bgr
            image_bgr = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        ticks = int(round(pts / self.time_base))
        frame.pts = max(ticks, self._last_pts + 1)  # the encoder needs strictly increasing pts
        frame.time_base = self.time_base
        self._last_pts = frame.pts
        self._last_pts_s = float(frame.pts * self.time_base)
        try:
            self._mux_all(self._stream.encode(frame))
        except OSError as exc:
            self._fail()
            raise self.output.error(exc) from None
        self.frames_written += 1
        if self.output.sync_due():
            self._sync()

    def _mux_all(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)
            self._muxed += 1
            # The fragment of every packet but this one is complete in the file now.
            self._good_size = self._file.tell()
            self.frames_kept = self._muxed - 1

    def _sync(self) -> None:
        try:
            self.output.sync()
        except OSError as exc:
            self._fail()
            raise self.output.error(exc, "sync") from None

    def _fail(self) -> None:
        """A write failed: stop writing, cut the file back to its last complete fragment."""
        self.state = "failed"
        self._file.failed = self._file.failed or OSError("write after failure")
        try:
            container = getattr(self, "_container", None)
            if container is not None:
                container.close()
        except (av.FFmpegError, OSError):
            pass  # writing the trailer fails too; the cut below drops whatever it wrote
        self.output.cut_to(self._good_size)
        self.output.release()

    def close(self) -> None:
        """Drain the encoder, finalise (remux + audio) and release. Raises OutputError on failure."""
        if self.state != "writing":
            return
        try:
            self._mux_all(self._stream.encode(None))
            self._container.close()  # writes the last fragment and the fragment index
            self.frames_kept = self._muxed
            self._sync()
        except OSError as exc:
            self._fail()
            raise self.output.error(exc, "finalise") from None
        self.state = "fragmented"
        try:
            if self.frames_written and self.output.regular:
                self._remux_faststart()
            self.state = "finalised"
        finally:
            self.output.release()

    def _remux_faststart(self) -> None:
        """Rewrite the fragmented MP4 as a regular one (index first, audio added), atomically."""
        tmp = self.path.with_name(f".{self.path.name}.posestream-remux.mp4")
        end_s = None if self._last_pts_s is None else self._last_pts_s + 1.0 / float(self.rate)
        try:
            with av.open(str(self.path)) as src, av.open(str(tmp), "w", format="mp4",
                                                         options={"movflags": "+faststart"}) as dst:  # fmt: skip
                streams = [_copied_video(src, dst)]
                audio = _audio_packets(self.audio_from, dst, end_s)
                if audio is not None:
                    streams.append(audio)
                for packet in heapq.merge(*streams, key=lambda item: item[0]):
                    dst.mux(packet[1])
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            self.output.adopt(fd)  # locked before it takes the path: the path is never unlocked
            os.fsync(fd)
            os.replace(tmp, self.path)
        except (av.FFmpegError, OSError) as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            reason = getattr(exc, "strerror", None) or str(exc)
            raise OutputError(f"video output '{self.path}' could not be finalised ({reason}); the fragmented "
                              f"MP4 is kept: it plays, all {self.frames_kept} frames") from None  # fmt: skip

    def discard(self) -> None:
        """The run was refused before its first frame: close; releasing the claim removes a new file."""
        if self.state == "writing":
            self.state = "failed"
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass
        self.output.abandon()

    def describe(self) -> str:
        """One line for the run's summary: what the file holds and whether it is finalised."""
        extra = f", {self.letterboxed} letterboxed into {self.size_wh[0]}x{self.size_wh[1]}" if self.letterboxed else ""
        if self._even_wh != self.size_wh:
            extra += f", padded to {self._even_wh[0]}x{self._even_wh[1]} (H.264 needs even sizes)"
        text = {
            "finalised": f"{self.frames_kept} frames{extra}, finalised",
            "fragmented": f"{self.frames_kept} frames{extra}, kept as fragmented MP4 (plays; not finalised)",
            "failed": f"write failed: {self.frames_kept} frames kept, the file decodes up to there",
            "writing": "not finalised (its stage did not stop): the fragmented MP4 plays up to its last fragment",
        }[self.state]
        return f"video {self.path}: {text}"

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def letterbox(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size_wh`` (aspect kept), centred on black. (H, W, 3) uint8."""
    w, h = size_wh
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y : y + nh, x : x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def _copied_video(src, dst) -> Iterator[tuple[float, av.Packet]]:
    in_stream = src.streams.video[0]
    out_stream = dst.add_stream_from_template(in_stream)
    for packet in src.demux(in_stream):
        if packet.dts is None:  # the demuxer's flush packet
            continue
        packet.stream = out_stream
        yield float(packet.dts * packet.time_base), packet


def _audio_packets(path: str | None, dst, end_s: float | None) -> Iterator[tuple[float, av.Packet]] | None:
    """The first audio track of ``path`` up to ``end_s``, as packets for ``dst`` (None: no audio)."""
    if not path:
        return None
    try:
        src = av.open(path)
    except (av.FFmpegError, OSError) as exc:
        log.warning("audio not copied: cannot open '%s' again (%s)", path, exc)
        return None
    if not src.streams.audio:
        src.close()
        return None
    in_stream = src.streams.audio[0]
    if in_stream.codec_context.name in AUDIO_COPY:
        out_stream = dst.add_stream_from_template(in_stream)
        return _copy_audio(src, in_stream, out_stream, end_s)
    log.info("audio: %s is re-encoded to AAC for the MP4", in_stream.codec_context.name)
    out_stream = dst.add_stream("aac", rate=in_stream.codec_context.sample_rate)
    out_stream.layout = in_stream.codec_context.layout
    return _reencode_audio(src, in_stream, out_stream, end_s)


def _copy_audio(src, in_stream, out_stream, end_s) -> Iterator[tuple[float, av.Packet]]:
    with src:
        for packet in src.demux(in_stream):
            if packet.dts is None:
                continue
            t = float(packet.dts * packet.time_base)
            if end_s is not None and packet.pts is not None and float(packet.pts * packet.time_base) >= end_s:
                break
            packet.stream = out_stream
            yield t, packet


def _reencode_audio(src, in_stream, out_stream, end_s) -> Iterator[tuple[float, av.Packet]]:
    rate = out_stream.codec_context.sample_rate
    with src:
        def frames():
            next_pts = 0
            for frame in src.decode(in_stream):
                if end_s is not None and frame.time is not None and frame.time >= end_s:
                    break
                # Time in samples, as the encoder counts: the source's start offset is kept.
                pts = round(frame.time * rate) if frame.time is not None else next_pts
                frame.pts, frame.time_base = pts, Fraction(1, rate)
                next_pts = pts + frame.samples
                yield frame
            yield None  # drain the encoder

        for frame in frames():
            for packet in out_stream.encode(frame):
                if packet.dts is None:
                    continue
                yield float(packet.dts * packet.time_base), packet


# --------------------------------------------------------------------------- images
def write_image(path: str | Path, image_bgr: np.ndarray, *, jpeg_quality: int = 95) -> Path:
    """Encode ``image_bgr`` (H, W, 3) uint8 in the format of ``path``'s suffix; write it atomically.

    A failed write (disk full, a folder that cannot be made) is an ``OutputError`` naming the
    picture; the temporary file is removed and an earlier picture at ``path`` is kept.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, image_bgr, params)
    if not ok:
        raise OutputError(f"image output '{path}': OpenCV cannot encode '{suffix}' files")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data.tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        hint = " (disk full?)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise OutputError(f"cannot write image output '{path}': {exc.strerror or exc}{hint}") from None
    return path


# --------------------------------------------------------------------------- keypoints
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


class _RecordFile:
    """Whole records (lines, rows) appended with one ``os.write`` each; cut back on a failure."""

    def __init__(self, target: str | os.PathLike | OutputFile, what: str) -> None:
        self.output = open_output(target, what)
        self.path = self.output.path
        self._fd = self.output.begin()
        self._size = 0
        self.records = 0
        self.state = "writing"

    def _append(self, data: bytes, records: int = 1) -> None:
        if self.state != "writing":
            raise OutputError(f"{self.output.what} output '{self.path}' is {self.state}; nothing more is written")
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
            self._size += done
            if self.output.sync_due():
                self.output.sync()
        except OSError as exc:
            self.state = "failed"
            self.output.cut_to(self._size)  # whole records only: drop a partly written one
            self.output.release()
            raise self.output.error(exc) from None
        self.records += records

    def close(self) -> None:
        if self.state != "writing":
            return
        try:
            self.output.sync()
        except OSError as exc:
            self.state = "failed"
            self.output.release()
            raise self.output.error(exc, "sync") from None
        self.state = "finalised"
        self.output.release()

    def describe(self, unit: str) -> str:
        state = {"finalised": "finalised", "writing": "not closed (whole lines only)",
                 "failed": "write failed; cut back to whole lines"}[self.state]  # fmt: skip
        return f"{self.output.what} {self.path}: {self.records} {unit}, {state}"


class KeypointJsonlWriter(_RecordFile):
    """JSON Lines: ``{"frame", "pts", ["file",] "people": [{"track_id", "box_xyxy", "box_score", "keypoints"}]}``.

    Exactly one line per frame, nothing else. With a ``keypoint_set`` every line also has
    ``"keypoint_set": <name>`` and the first line ``"keypoint_names": [...]`` (the order of each
    person's ``keypoints``). ``extra`` is merged into every line, e.g. ``{"random_weights": true}``
    so no consumer of a random-weight run can miss it.
    """

    def __init__(self, target: str | os.PathLike | OutputFile, extra: dict | None = None,
                 keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        super().__init__(target, "JSON")
        self.keypoint_set = keypoint_set
        self.extra = dict(extra or {})
        if keypoint_set is not None:
            self.extra["keypoint_set"] = keypoint_set.name
        self._first = True

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
        self._append((json.dumps(line, separators=(",", ":")) + "\n").encode())

    def describe(self) -> str:
        return super().describe("lines")


class JsonLinesWriter(_RecordFile):
    """One JSON object per ``write``, as one line written at once (whole lines only)."""

    def __init__(self, target: str | os.PathLike | OutputFile, what: str = "JSON") -> None:
        super().__init__(target, what)

    def write(self, obj: dict) -> None:
        self._append((json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode())

    def describe(self) -> str:
        return super().describe("lines")


class KeypointCsvWriter(_RecordFile):
    """CSV, one row per person and frame: frame, pts, [file,] track_id, box, box_score, then x, y, score
    per keypoint.

    keypoint_set: names the keypoint columns (``<name>_x, <name>_y, <name>_score``); None = boxes
    only (a run without a pose model). Every row has as many cells as the header. ``with_file``: a
    ``file`` column (image sources) naming each row's picture.
    """

    def __init__(self, target: str | os.PathLike | OutputFile, keypoint_set: KeypointSet | None = None,
                 random_weights: bool = False, with_file: bool = False) -> None:  # fmt: skip
        super().__init__(target, "CSV")
        self.keypoint_set = keypoint_set
        self.random_weights = random_weights
        self.with_file = with_file
        cols = ["frame", "pts"] + (["file"] if with_file else []) + ["track_id", "x1", "y1", "x2", "y2", "box_score"]
        names = keypoint_set.keypoints if keypoint_set is not None else ()
        for name in names:
            cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
        self._num_keypoint_cols = 3 * len(names)
        if random_weights:  # a column nobody can miss; absent in normal runs
            cols.append("random_weights")
        self._append(self._rows([cols]), records=0)

    @staticmethod
    def _rows(rows: list[list]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode()

    def write(self, frame_index: int, pts: float, poses: Poses | None, name: str | None = None) -> None:
        _check_k("KeypointCsvWriter", self.keypoint_set, poses)
        rows = []
        for person in poses_to_records(poses):
            head = [frame_index, float(pts)] + ([name] if self.with_file else [])
            row = head + [person["track_id"], *person["box_xyxy"], person["box_score"]]
            fixed = len(row)
            for kp in person["keypoints"]:
                row += kp
            row += [None] * (self._num_keypoint_cols - (len(row) - fixed))  # boxes only: empty cells
            if self.random_weights:
                row.append("true")
            rows.append(["" if v is None else v for v in row])
        if rows:
            self._append(self._rows(rows), records=len(rows))

    def describe(self) -> str:
        return super().describe("rows")
