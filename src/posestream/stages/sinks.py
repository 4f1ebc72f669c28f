"""Sink stages: annotated video, keypoint files.

Each sink is given a claimed output (``io.outputs``: checked and locked by the preflight, nothing
truncated yet), opens its writer in ``open()`` (when the graph starts: the old file is replaced only
once the run really begins) and finalises it in ``close()``. ``describe()`` gives the summary's
line about each file: what it holds and whether it was finalised.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from posestream.io.outputs import OutputFile
from posestream.io.writers import KeypointCsvWriter, KeypointJsonlWriter, VideoWriter
from posestream.stages.base import StageBase
from posestream.types import Packet

__all__ = ["VideoSink", "KeypointSink"]


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
    """JSON Lines and/or CSV, one record per frame (every frame, also those with nobody in it)."""

    name = "keypoints"
    drain_on_stop = True

    def __init__(self, json_target: str | Path | OutputFile | None, csv_target: str | Path | OutputFile | None,
                 *, random_weights: bool = False) -> None:  # fmt: skip
        self.json_target, self.csv_target = json_target, csv_target
        self.random_weights = random_weights
        self.jsonl: KeypointJsonlWriter | None = None
        self.csv: KeypointCsvWriter | None = None

    def open(self, ctx=None) -> None:
        if self.json_target is not None:
            extra = {"random_weights": True} if self.random_weights else None
            self.jsonl = KeypointJsonlWriter(self.json_target, extra)
        if self.csv_target is not None:
            self.csv = KeypointCsvWriter(self.csv_target, random_weights=self.random_weights)

    def process(self, packet: Packet) -> Packet:
        for writer in (self.jsonl, self.csv):
            if writer is not None:
                writer.write(packet.index, packet.frame.pts, packet.people)
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


def _path(target) -> str:
    return str(target.path if isinstance(target, OutputFile) else target)
