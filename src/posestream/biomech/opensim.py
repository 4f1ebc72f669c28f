"""OpenSim files: TRC (marker trajectories) and MOT (time series such as joint angles).

TRC (Motion Analysis "track row column", what OpenSim reads as markers), tab-separated::

    PathFileType  4  (X/Y/Z)  <file name>
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    <rate>    <rate>      <T>        <M>         m|px   <rate>        <first frame #>     <T>
    Frame#  Time  <marker 1>  ""  ""  <marker 2>  ""  "" ...
    ""      ""    X1  Y1  Z1  X2  Y2  Z2 ...
    <blank line>
    <frame #>  <time>  x  y  z ...                       (one row per frame)

MOT (OpenSim storage, the header form with ``nRows``/``nColumns``), tab-separated::

    <name>
    version=1
    nRows=<T>
    nColumns=<1 + C>          (the time column included)
    inDegrees=yes
    <blank line>
    Units are S.I. units (second, meters, Newtons, ...)
    Angles are in degrees.
    <blank line>
    endheader
    time  <column 1> ... <column C>
    <time>  <values> ...

Times are written as the shortest decimal that reads back to the same float (``repr``), so the
time column equals the frame ``pts`` exactly, whatever the frame rate (1/240 s has no short
decimal form). Rates are informational: ``1 / median(diff(pts))``. Missing values are ``NaN``
(OpenSim's readers, pandas and numpy all parse it; an empty field would shift columns for
whitespace-splitting readers of MOT). Frame numbers are the source frame index + 1 (TRC counts
from 1), so a row points at its video frame. Files are written to a temporary name and renamed,
so an existing file is only ever replaced by a complete one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_trc", "write_mot", "rate_from_pts"]


def rate_from_pts(pts: np.ndarray) -> float:
    """Samples per second, ``1 / median(diff(pts))``; NaN for fewer than two samples."""
    p = np.asarray(pts, np.float64)
    return 1.0 / float(np.median(np.diff(p))) if p.size >= 2 else math.nan


def _num(value: float, digits: int = 7) -> str:
    return "NaN" if not math.isfinite(value) else f"{value:.{digits}g}"


def _time(value: float) -> str:
    return repr(float(value))


def _write_atomic(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_trc(path: str | Path, marker_names: Sequence[str], frame_index: np.ndarray, pts: np.ndarray,
              xyz: np.ndarray, units: str) -> Path:  # fmt: skip
    """Write markers: xyz (T, M, 3) at ``pts`` (T,) seconds for source frames ``frame_index`` (T,).

    units: "m" or "px" (written in the header's Units field).
    """
    path = Path(path)
    xyz = np.asarray(xyz, np.float64)
    t, m = len(pts), len(marker_names)
    if xyz.shape != (t, m, 3) or np.shape(frame_index) != (t,):
        raise ValueError(f"write_trc: xyz {xyz.shape} must be (T={t}, M={m}, 3), frame_index (T,)")
    if units not in ("m", "px"):
        raise ValueError(f"write_trc: units must be 'm' or 'px', got {units!r}")
    rate = _num(rate_from_pts(pts), 6)
    first = int(frame_index[0]) + 1 if t else 1
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate}\t{rate}\t{t}\t{m}\t{units}\t{rate}\t{first}\t{t}",
        "\t".join(["Frame#", "Time"] + [f"{name}\t\t" for name in marker_names]),  # 2 + 3M fields
        "\t".join(["", ""] + [f"X{i}\tY{i}\tZ{i}" for i in range(1, m + 1)]),
        "",
    ]
    for i in range(t):
        cells = [str(int(frame_index[i]) + 1), _time(pts[i])] + [_num(v) for v in xyz[i].ravel()]
        lines.append("\t".join(cells))
    _write_atomic(path, lines)
    return path


def write_mot(path: str | Path, pts: np.ndarray, columns: dict[str, np.ndarray], *, name: str = "Coordinates",
              in_degrees: bool = True) -> Path:  # fmt: skip
    """Write time series: ``columns`` name -> (T,) values at ``pts`` (T,) seconds."""
    path = Path(path)
    t = len(pts)
    for key, col in columns.items():
        if np.shape(col) != (t,):
            raise ValueError(f"write_mot: column {key!r} has shape {np.shape(col)}, expected ({t},)")
        if any(c.isspace() for c in key):
            raise ValueError(f"write_mot: column names cannot contain whitespace, got {key!r}")
    lines = [
        name,
        "version=1",
        f"nRows={t}",
        f"nColumns={1 + len(columns)}",
        f"inDegrees={'yes' if in_degrees else 'no'}",
        "",
        "Units are S.I. units (second, meters, Newtons, ...)",
        f"Angles are in {'degrees' if in_degrees else 'radians'}.",
        "",
        "endheader",
        "\t".join(["time", *columns]),
    ]
    cols = [np.asarray(c, np.float64) for c in columns.values()]
    for i in range(t):
        lines.append("\t".join([_time(pts[i])] + [_num(c[i]) for c in cols]))
    _write_atomic(path, lines)
    return path
