"""Batch inputs: files, folders, globs and manifests become jobs with unique output names.

A folder contributes the videos directly inside it (by suffix); a glob contributes the files it
matches; a ``.csv`` or ``.jsonl`` file is a manifest: one video per row or line, a ``path``
(relative to the manifest's folder), an optional output ``name``, and per-video config keys in
dotted form (``detector.model``, ``source.max_frames``; CSV cells are read as YAML, like ``--set``).
Anything else named explicitly is taken as a video, whatever its suffix: a bad file is then a
per-video failure of the batch, while a path that does not exist is an input error (exit 2).

Output names are the file stem, made safe for a folder name. Two inputs with the same stem
(``a/clip.mp4``, ``b/clip.mp4``) both get the stem plus 8 hex digits of a hash of their absolute
path (and options), so the name of a video is the same in every run of the batch: resume works
whatever the order or the other inputs.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from posestream.errors import InputError

__all__ = ["VideoJob", "collect_jobs", "VIDEO_SUFFIXES", "RESERVED_NAMES"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts"})
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
RESERVED_NAMES = frozenset({"summary.json", "summary.csv"})  # files the batch writes beside the folders
# Keys a manifest may not set: batch decides where each video's outputs go.
BATCH_OWNED_KEYS = frozenset({"output.video", "output.json", "output.csv"})


@dataclass(frozen=True)
class VideoJob:
    """One video of the batch. ``overrides``: (dotted key, value) pairs from its manifest row."""

    source: Path  # absolute
    name: str  # output folder name under the batch's out dir; unique within the batch
    overrides: tuple[tuple[str, Any], ...] = ()
    origin: str = ""  # where it was named ("manifest.csv line 3"), for error messages

    def options(self) -> dict[str, Any]:
        return dict(self.overrides)


@dataclass(frozen=True)
class _Entry:
    source: Path
    name: str | None
    overrides: tuple[tuple[str, Any], ...]
    origin: str


def collect_jobs(inputs: Sequence[str]) -> list[VideoJob]:
    """Expand ``inputs`` into jobs, in input order, without duplicates. Raises InputError."""
    if not inputs:
        raise InputError("no inputs: give video files, folders, globs or a manifest (.csv / .jsonl)")
    entries: list[_Entry] = []
    for spec in inputs:
        entries += _expand(spec)
    seen: set[tuple] = set()
    unique = []
    for e in entries:  # the same video named twice (a file and a glob over it): once
        key = (e.source, e.name, e.overrides)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return _name(unique)


def _expand(spec: str) -> list[_Entry]:
    path = Path(spec).expanduser()
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise InputError(f"folder '{spec}' holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
        return [_Entry(p.resolve(), None, (), spec) for p in videos]
    if path.is_file():
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return _read_manifest(path)
        return [_Entry(path.resolve(), None, (), spec)]
    if glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"pattern '{spec}' matches no files")
        return [_Entry(p.resolve(), None, (), spec) for p in files]
    raise InputError(f"input '{spec}' does not exist (expected a video file, folder, glob or manifest)")


# --------------------------------------------------------------------------- manifests
def _read_manifest(path: Path) -> list[_Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest '{path}' cannot be read: {exc}") from None
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text)
    entries = [_entry_from_row(path, where, row) for where, row in rows]
    if not entries:
        raise InputError(f"manifest '{path}' lists no videos")
    return entries


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "path" not in [f.strip() for f in reader.fieldnames]:
        raise InputError(f"manifest '{path}': the first line must be a header with a 'path' column")
    rows = []
    for line_no, raw in enumerate(reader, start=2):
        if None in raw:
            raise InputError(f"manifest '{path}' line {line_no}: more cells than header columns")
        row = {}
        for key, cell in raw.items():
            cell = (cell or "").strip()
            if cell:  # an empty cell leaves the batch's setting as it is
                row[key.strip()] = cell if key.strip() in ("path", "name") else _yaml_value(cell)
        rows.append((f"manifest '{path}' line {line_no}", row))
    return rows


def _yaml_value(cell: str) -> Any:
    try:
        return yaml.safe_load(cell)
    except yaml.YAMLError:
        return cell


def _jsonl_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"manifest '{path}' line {line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        rows.append((where, row))
    return rows


def _entry_from_row(manifest: Path, where: str, row: dict[str, Any]) -> _Entry:
    row = dict(row)
    rel = row.pop("path", None)
    if not isinstance(rel, str) or not rel:
        raise InputError(f"{where}: 'path' is missing (expected the video's path)")
    source = Path(rel).expanduser()
    if not source.is_absolute():
        source = manifest.parent / source
    if not source.is_file():
        raise InputError(f"{where}: video '{rel}' does not exist")
    name = row.pop("name", None)
    if name is not None and not isinstance(name, str):
        name = str(name)
    for key in row:
        if "." not in key:
            raise InputError(f"{where}: column '{key}' is not a config key (expected section.key, path or name)")
        if key in BATCH_OWNED_KEYS:
            raise InputError(f"{where}: '{key}' is set by batch (outputs go to OUT_DIR/<name>/)")
    overrides = tuple(sorted(row.items()))
    return _Entry(source.resolve(), _safe_name(name) if name else None, overrides, where)


# --------------------------------------------------------------------------- names
def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).lstrip(".-") or "video"
    return f"{name}-video" if name in RESERVED_NAMES else name


def _name(entries: list[_Entry]) -> list[VideoJob]:
    explicit = Counter(e.name for e in entries if e.name)
    twice = [n for n, c in explicit.items() if c > 1]
    if twice:
        raise InputError(f"manifest names '{twice[0]}' for more than one video: output names must be unique")
    stems = Counter(_safe_name(e.source.stem) for e in entries if not e.name)
    jobs = []
    for e in entries:
        name = e.name
        if name is None:
            stem = _safe_name(e.source.stem)
            if stems[stem] > 1 or stem in explicit:
                digest = hashlib.sha1(repr((str(e.source), e.overrides)).encode()).hexdigest()[:8]
                stem = f"{stem}-{digest}"
            name = stem
        jobs.append(VideoJob(e.source, name, e.overrides, e.origin))
    return jobs
