"""Sink stages: annotated video, annotated pictures, keypoint files.

Each file sink is given a claimed output (``io.outputs``: checked and locked by the preflight,
nothing truncated yet), opens its writer in ``open()`` (when the graph starts: the old file is
replaced only once the run really begins) and finalises it in ``close()``. ``describe()`` gives the
summary's line about each output: what it holds and whether it was finalised.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from posestream.errors import InputError
from posestream.io.outputs import OutputFile
from posestream.io.writers import KeypointCsvWriter, KeypointJsonlWriter, VideoWriter, write_image
from posestream.keypoints import KeypointSet
from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["VideoSink", "KeypointSink", "ImageSink"]


class VideoSink(StageBase):
    """Writes ``packet.annotated`` (or the raw frame when nothing was rendered) with the source pts."""

    name = "video"
    drain_on_stop = True  # frames past this sink reach every later sink too (outputs agree)

    def __init__(self, target: str | Path | OutputFile, size_wh: tuple[int, int], *, fps: float | None,
                 time_base: Fraction | None, crf: int = 20, preset: str = "veryfast", threads: int = 0,
                 audio_from: str | None = None, writer: VideoWriter | None = None) -> None:  # fmt: skip
        """writer: one opened already (a new file gets its header before the models load)."""
        self.target = target
        self._args = dict(size_wh=size_wh, fps=fps, time_base=time_base, crf=crf, preset=preset,
                          threads=threads, audio_from=audio_from)  # fmt: skip
        self.writer: VideoWriter | None = writer

    def open(self, ctx=None) -> None:
        if self.writer is None:
            self.writer = VideoWriter(self.target, **self._args)

    def process(self, packet: Packet) -> Packet:
        image = packet.annotated if packet.annotated is not None else packet.frame.image
        self.writer.write(image, packet.frame.pts, label=f"frame {packet.index}")
        return packet

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        elif isinstance(self.target, OutputFile):
            self.target.release()

    def describe(self) -> list[str]:
        if self.writer is None:
            return [f"video {_path(self.target)}: not written (the run stopped before it opened)"]
        return [self.writer.describe()]


class KeypointSink(StageBase):
    """JSON Lines and/or CSV, one record per frame (every frame, also those with nobody in it).

    keypoint_set: the pose model's set (column names, JSON keypoint names); None = boxes only.
    """

    name = "keypoints"
    drain_on_stop = True

    def __init__(self, json_target: str | Path | OutputFile | None, csv_target: str | Path | OutputFile | None,
                 *, random_weights: bool = False, with_file: bool = False,
                 keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        """with_file: a ``file`` field / column naming each record's picture (image sources)."""
        self.json_target, self.csv_target = json_target, csv_target
        self.random_weights = random_weights
        self.with_file = with_file
        self.keypoint_set = keypoint_set
        self.jsonl: KeypointJsonlWriter | None = None
        self.csv: KeypointCsvWriter | None = None

    def open(self, ctx=None) -> None:
        if self.json_target is not None:
            extra = {"random_weights": True} if self.random_weights else None
            self.jsonl = KeypointJsonlWriter(self.json_target, extra, self.keypoint_set)
        if self.csv_target is not None:
            self.csv = KeypointCsvWriter(self.csv_target, self.keypoint_set, random_weights=self.random_weights,
                                         with_file=self.with_file)  # fmt: skip

    def process(self, packet: Packet) -> Packet:
        for writer in (self.jsonl, self.csv):
            if writer is not None:
                writer.write(packet.index, packet.frame.pts, packet.people, packet.frame.name)
        return packet

    def close(self) -> None:
        errors = []
        for writer, target in ((self.jsonl, self.json_target), (self.csv, self.csv_target)):
            if writer is not None:
                try:
                    writer.close()
                except Exception as exc:  # noqa: BLE001 - close the other one, then report the first
                    errors.append(exc)
            elif isinstance(target, OutputFile):
                target.release()
        if errors:
            raise errors[0]

    def describe(self) -> list[str]:
        lines = []
        for writer, target, what in ((self.jsonl, self.json_target, "JSON"), (self.csv, self.csv_target, "CSV")):
            if writer is not None:
                lines.append(writer.describe())
            elif target is not None:
                lines.append(f"{what} {_path(target)}: not written (the run stopped before it opened)")
        return lines


class ImageSink(StageBase):
    """Annotated pictures of an image source: ``folder`` + each frame's own name, or one ``file``.

    Give exactly one of them. ``file`` takes a single picture (a still): a second frame is an error,
    as writing it would replace the first. Every picture is written atomically (see
    ``posestream.io.writers.write_image``).
    """

    name = "images"
    drain_on_stop = True

    def __init__(self, *, folder: str | Path | None = None, file: str | Path | None = None) -> None:
        if (folder is None) == (file is None):
            raise ValueError("ImageSink: give folder or file")
        self.folder = Path(folder) if folder is not None else None
        self.file = Path(file) if file is not None else None
        self.written = 0

    def process(self, packet: Packet) -> Packet:
        image = packet.annotated if packet.annotated is not None else packet.frame.image
        if self.file is not None:
            if self.written:
                raise InputError(f"image output '{self.file}' takes one picture and the source has more: "
                                 "use --out-dir for annotated pictures, or an .mp4 for a video")  # fmt: skip
            write_image(self.file, image)
        else:
            name = packet.frame.name or f"{packet.index:06d}.png"
            write_image(self.folder / name, image)
        self.written += 1
        return packet

    def describe(self) -> list[str]:
        where = self.file if self.file is not None else self.folder
        return [f"pictures {where}: {self.written} written (each complete)"]


def _path(target) -> str:
    return str(target.path if isinstance(target, OutputFile) else target)
