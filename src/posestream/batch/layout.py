"""Where a batch writes: ``OUT_DIR/<name>/`` per video, moved into place only when complete.

A video is written into ``OUT_DIR/.posestream-tmp/<name>/`` (same file system, hidden), exactly
as ``posestream run`` writes its outputs; its record ``batch.json`` is written last; then the folder
is renamed to ``OUT_DIR/<name>/`` in one step. So a folder ``OUT_DIR/<name>/`` holding
``batch.json`` is a finished video (a re-run skips it), and anything else is not: an attempt
that dies leaves only its hidden folder, which the next attempt (or the end of the batch) removes.
A folder of that name that is not a batch result is never touched (the batch refuses to start).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from posestream.errors import InputError

__all__ = ["OutputLayout", "RECORD_NAME", "TMP_DIRNAME", "SUMMARY_FIELDS"]

TMP_DIRNAME = ".posestream-tmp"
RECORD_NAME = "batch.json"
LOCK_NAME = ".posestream-batch.lock"
SUMMARY_FIELDS = ("name", "status", "frames", "fps", "people", "wall_s", "attempts", "error", "source")


class OutputLayout:
    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir).absolute()
        self.tmp_dir = self.out_dir / TMP_DIRNAME
        self._lock: IO[str] | None = None

    # ----------------------------------------------------------------- paths and state
    def final(self, name: str) -> Path:
        return self.out_dir / name

    def partial(self, name: str) -> Path:
        return self.tmp_dir / name

    def is_done(self, name: str) -> bool:
        return (self.final(name) / RECORD_NAME).is_file()

    def read_record(self, name: str) -> dict[str, Any]:
        return json.loads((self.final(name) / RECORD_NAME).read_text(encoding="utf-8"))

    def foreign(self, name: str) -> bool:
        """True when ``OUT_DIR/<name>`` exists and is not a finished batch result (not ours to replace)."""
        path = self.final(name)
        return (path.exists() or path.is_symlink()) and not self.is_done(name)

    # ----------------------------------------------------------------- the driver's side
    def open(self) -> None:
        """Create OUT_DIR and hold its lock: one batch writes into a folder at a time."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.out_dir / LOCK_NAME, "a", encoding="utf-8")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise InputError(f"--out-dir '{self.out_dir}' cannot be written: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise InputError(f"another posestream batch is writing into '{self.out_dir}'") from None

    def close(self) -> None:
        """Remove what unfinished attempts left (call when no task runs any more); release the lock."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def write_summary(self, rows: list[dict[str, Any]], totals: dict[str, Any]) -> tuple[Path, Path]:
        """``summary.json`` (totals + one record per video) and ``summary.csv`` (SUMMARY_FIELDS)."""
        json_path, csv_path = self.out_dir / "summary.json", self.out_dir / "summary.csv"
        _atomic_write(json_path, json.dumps({"totals": totals, "videos": rows}, indent=2) + "\n")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in SUMMARY_FIELDS})
        _atomic_write(csv_path, text.getvalue())
        return json_path, csv_path

    # ----------------------------------------------------------------- a task's side
    def begin(self, name: str) -> Path:
        """A fresh, empty hidden folder for one attempt at ``name`` (an earlier attempt's is removed)."""
        path = self.partial(name)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def discard(self, name: str) -> None:
        shutil.rmtree(self.partial(name), ignore_errors=True)

    def commit(self, name: str, record: dict[str, Any]) -> Path:
        """Write the record last, then move the folder into place (replacing an earlier result)."""
        path = self.partial(name)
        _atomic_write(path / RECORD_NAME, json.dumps(record, indent=2) + "\n")
        final = self.final(name)
        old = None
        if self.is_done(name):  # --force: the old result goes only once the new one is in place
            old = self.tmp_dir / f".old-{name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        elif final.exists() or final.is_symlink():
            raise FileExistsError(f"'{final}' appeared during the batch and is not a batch result; left as it is")
        os.rename(path, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
