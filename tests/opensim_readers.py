"""Strict readers of OpenSim TRC and MOT files, written for the tests from the formats' descriptions
(OpenSim documentation: "Motion (.mot) Files" and the Motion Analysis TRC layout), independently of
posestream's writers: every header field is checked, every row must have exactly the declared
number of columns, and counts must agree. Any deviation raises AssertionError with the line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRC_FIELDS = ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate", "OrigDataStartFrame",
              "OrigNumFrames"]  # fmt: skip


@dataclass
class Trc:
    file_name: str
    header: dict[str, str]
    markers: list[str]
    frame: np.ndarray  # (T,) int, Frame# column
    time: list[float]  # exactly as parsed from the Time column
    xyz: np.ndarray  # (T, M, 3)


@dataclass
class Mot:
    name: str
    header: dict[str, str]
    columns: list[str]  # after "time"
    time: list[float]
    data: np.ndarray  # (T, C)


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AssertionError(f"{where}: not a number: {text!r}") from None


def read_trc(path: Path) -> Trc:
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "file must end with a newline"
    lines = lines[:-1]
    first = lines[0].split("\t")
    assert first[:3] == ["PathFileType", "4", "(X/Y/Z)"] and len(first) == 4, f"line 1: {lines[0]!r}"
    assert lines[1].split("\t") == TRC_FIELDS, f"line 2: {lines[1]!r}"
    values = lines[2].split("\t")
    assert len(values) == len(TRC_FIELDS), f"line 3 has {len(values)} fields"
    header = dict(zip(TRC_FIELDS, values))
    for key in ("DataRate", "CameraRate", "OrigDataRate"):
        assert _float(header[key], key) > 0
    n_frames, n_markers = int(header["NumFrames"]), int(header["NumMarkers"])
    assert header["Units"] in ("m", "mm", "px"), header["Units"]
    width = 2 + 3 * n_markers
    names_row = lines[3].split("\t")
    assert len(names_row) == width and names_row[:2] == ["Frame#", "Time"], f"line 4: {len(names_row)} fields"
    markers = names_row[2::3]
    assert all(markers) and len(set(markers)) == n_markers, f"line 4: marker names {markers}"
    assert all(c == "" for i, c in enumerate(names_row[2:]) if i % 3), "line 4: two blanks after each marker"
    axes_row = lines[4].split("\t")
    expected = ["", ""] + [f"{a}{i}" for i in range(1, n_markers + 1) for a in "XYZ"]
    assert axes_row == expected, f"line 5: {lines[4][:80]!r}"
    assert lines[5] == "", "line 6 must be blank"
    rows = lines[6:]
    assert len(rows) == n_frames == int(header["OrigNumFrames"]), f"{len(rows)} rows, NumFrames {n_frames}"
    frame, time, xyz = [], [], []
    for i, row in enumerate(rows, start=7):
        cells = row.split("\t")
        assert len(cells) == width, f"line {i}: {len(cells)} fields, expected {width}"
        frame.append(int(cells[0]))
        time.append(_float(cells[1], f"line {i} Time"))
        xyz.append([_float(c, f"line {i}") for c in cells[2:]])
    if frame:
        assert frame[0] == int(header["OrigDataStartFrame"]), "OrigDataStartFrame is the first Frame#"
        assert all(b > a for a, b in zip(frame, frame[1:])), "Frame# increases"
        assert all(b > a for a, b in zip(time, time[1:])), "Time increases"
    return Trc(first[3], header, markers, np.array(frame), time, np.array(xyz).reshape(len(rows), n_markers, 3))


def read_mot(path: Path) -> Mot:
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "file must end with a newline"
    lines = lines[:-1]
    end = lines.index("endheader")
    name = lines[0]
    assert name and "=" not in name, f"line 1 is the name: {name!r}"
    header = {}
    for line in lines[1:end]:
        if "=" in line:
            key, _, value = line.partition("=")
            header[key] = value
    assert header.get("version") == "1", header
    assert header.get("inDegrees") in ("yes", "no"), header
    n_rows, n_cols = int(header["nRows"]), int(header["nColumns"])
    columns = lines[end + 1].split("\t")
    assert columns[0] == "time" and len(columns) == n_cols, f"column header: {columns[:5]} ({len(columns)})"
    assert len(set(columns)) == n_cols, "column names are unique"
    rows = lines[end + 2 :]
    assert len(rows) == n_rows, f"{len(rows)} rows, nRows {n_rows}"
    time, data = [], []
    for i, row in enumerate(rows, start=end + 3):
        cells = row.split("\t")
        assert len(cells) == n_cols, f"line {i}: {len(cells)} fields, expected {n_cols}"
        time.append(_float(cells[0], f"line {i} time"))
        data.append([_float(c, f"line {i}") for c in cells[1:]])
    assert all(b > a for a, b in zip(time, time[1:])), "time increases"
    return Mot(name, header, columns[1:], time, np.array(data).reshape(n_rows, n_cols - 1))


def assert_times_exact(times: list[float], pts) -> None:
    """Each parsed time is the very float of the frame's pts (no rounding anywhere)."""
    pts = [float(p) for p in pts]
    assert len(times) == len(pts)
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(times, pts)) if a != b or math.isnan(a)]
    assert not bad, f"{len(bad)} times differ from pts, first {bad[0]}"
