"""Sink stages: annotated video, annotated pictures, keypoint files. Each finalises its file in ``close()``."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from posestream.errors import InputError
from posestream.io.writers import KeypointCsvWriter, KeypointJsonlWriter, VideoWriter, write_image
from posestream.keypoints import KeypointSet
from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["VideoSink", "KeypointSink", "ImageSink"]


class VideoSink(StageBase):
    """Writes ``packet.annotated`` (or the raw frame when nothing was rendered) with the source pts."""

    name = "video"

    def __init__(self, path: str | Path, size_wh: tuple[int, int], *, fps: float | None,
                 time_base: Fraction | None, crf: int = 20, preset: str = "veryfast",
                 threads: int = 0) -> None:  # fmt: skip
        # Opened here, on the caller's thread: a bad output path is an input error before the run.
        self.writer = VideoWriter(path, size_wh, fps=fps, time_base=time_base, crf=crf, preset=preset,
                                  threads=threads)  # fmt: skip

    def process(self, packet: Packet) -> Packet:
        image = packet.annotated if packet.annotated is not None else packet.frame.image
        self.writer.write(image, packet.frame.pts)
        return packet

    def close(self) -> None:
        self.writer.close()


class KeypointSink(StageBase):
    """JSON Lines and/or CSV, one record per frame (every frame, also those with nobody in it).

    keypoint_set: the pose model's set (column names, JSON keypoint names); None = boxes only.
    """

    name = "keypoints"

    def __init__(self, json_path: str | Path | None, csv_path: str | Path | None, *,
                 random_weights: bool = False, with_file: bool = False,
                 keypoint_set: KeypointSet | None = None) -> None:  # fmt: skip
        extra = {"random_weights": True} if random_weights else None
        self.jsonl = KeypointJsonlWriter(json_path, extra, keypoint_set) if json_path else None
        self.csv = (KeypointCsvWriter(csv_path, keypoint_set, random_weights=random_weights, with_file=with_file)
                    if csv_path else None)  # fmt: skip

    def process(self, packet: Packet) -> Packet:
        for writer in (self.jsonl, self.csv):
            if writer is not None:
                writer.write(packet.index, packet.frame.pts, packet.people, packet.frame.name)
        return packet

    def close(self) -> None:
        for writer in (self.jsonl, self.csv):
            if writer is not None:
                writer.close()


class ImageSink(StageBase):
    """Annotated pictures of an image source: ``folder`` + each frame's own name, or one ``file``.

    Give exactly one of them. ``file`` takes a single picture (a still): a second frame is an error,
    as writing it would replace the first. Every picture is written atomically (see
    ``posestream.io.writers.write_image``).
    """

    name = "images"

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
