"""What a run tells its user while it works and when it ends (the CLI's feedback, no graph logic).

- ``LineProgress``: progress for a stderr that is not a terminal (a log file, CI, ``nohup``), where a
  redrawn bar would be noise: one plain line every ``every_s`` seconds with frames done, the rate
  and the time left, e.g. ``posestream: 120/230 frames (52%), 11.8 fps, eta 9 s``.
- ``written_files``: the files a run wrote with their sizes, for the closing list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

__all__ = ["LineProgress", "written_files", "format_size", "format_duration"]


def format_size(num_bytes: int) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units, as file managers show them)."""
    size = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``; under a minute ``'42 s'``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class LineProgress:
    """A progress line every ``every_s`` seconds (and one at the end) on ``stream``.

    total: frames expected (None for live sources: no percentage, no eta). ``update(done)`` is cheap
    and may be called as often as wanted; it prints only when ``every_s`` has passed.
    """

    def __init__(self, total: int | None, stream: TextIO, *, every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, prefix: str = "posestream") -> None:  # fmt: skip
        if every_s < 0:
            raise ValueError(f"every_s must be >= 0, got {every_s}")
        self.total = total
        self.stream = stream
        self.every_s = every_s
        self.clock = clock
        self.prefix = prefix
        self._t0 = clock()
        self._t_last = self._t0
        self._done = 0
        self._printed_at = -1

    def line(self, done: int, now: float) -> str:
        elapsed = now - self._t0
        fps = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            text = f"{done}/{self.total} frames ({100 * done / self.total:.0f}%), {fps:.1f} fps"
            if 0 < fps and done < self.total:
                text += f", eta {format_duration((self.total - done) / fps)}"
        else:
            text = f"{done} frames, {fps:.1f} fps"
        return f"{self.prefix}: {text}"

    def update(self, done: int) -> None:
        self._done = done
        now = self.clock()
        if done == self._printed_at and now - self._t_last < max(self.every_s, 1.0):
            return  # nothing new to say yet
        if now - self._t_last >= self.every_s:
            self._emit(now)

    def close(self) -> None:
        """A last line with the final count (unless that count was just printed)."""
        if self._printed_at != self._done:
            self._emit(self.clock())

    def _emit(self, now: float) -> None:
        print(self.line(self._done, now), file=self.stream, flush=True)
        self._t_last = now
        self._printed_at = self._done


def written_files(paths: Iterable[Path]) -> list[tuple[Path, int, int]]:
    """``(path, bytes, files)`` for each output that exists: a file counts 1; a folder sums its files."""
    out = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            out.append((path, path.stat().st_size, 1))
        elif path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
            out.append((path, sum(p.stat().st_size for p in files), len(files)))
    return out
