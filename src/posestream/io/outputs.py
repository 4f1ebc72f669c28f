"""Output safety: the preflight of output paths, and the locked files every writer writes through.

Nothing a run refuses may touch a user's file, and no run may destroy one by accident. So:

1. ``check_outputs`` (the preflight) runs before any model loads and before anything is opened for
   writing. Every output is resolved with ``realpath`` and refused (``InputError``, exit code 2)
   when it is the source (or one of its images), the same file as another output, an existing
   folder, an existing file that cannot be written, or when its folder is not writable (a folder
   that does not exist yet must be one the user can make: its nearest existing parent is a
   writable folder). It reads the file system and changes nothing.
2. ``claim_outputs`` then makes missing folders and locks each output (``flock``, exclusive,
   non-blocking) *without truncating it*. A path another run holds is refused with exit code 2
   naming the holder's pid; the files and folders this claim made are removed again, and existing
   files keep every byte.
3. Only the writers truncate, through ``OutputFile.begin()``, once the whole pipeline is built
   (models loaded, every output claimed). From then on the run owns the paths.

Why in place, not "write to a temporary name, then rename": the promise for a run that is killed
outright (SIGKILL, power cut, OOM killer) is a playable video *where the user looks for it*; a
temporary file would leave nothing at the output path and a hidden partial file beside it. What
the temporary-file pattern protects (an old file surviving a refused run) the preflight and the
claim protect instead: a run is refused before any byte is written. A run that starts and then
fails has, by the user's own command, replaced the old file with a finalised partial one. The one
rename left is the video's final remux with the index in front (``io.writers``): it replaces a
complete fragmented file by a complete regular one, atomically.

Locks are advisory ``flock`` locks on the output file itself (no lock files beside it; the kernel
drops them when the process dies, even by SIGKILL). They only stop other posestream runs (and
tools that use ``flock``), which is the case that tore files: two runs writing the same outputs.
Character devices (``/dev/null``, ``/dev/full``) are written but neither locked nor truncated.

Write errors (disk full, EIO) surface as ``OutputError`` naming the output and path; the writers
cut their file back to its last complete unit (JSON line, CSV row, MP4 fragment) so what is kept
always parses. ``sync_due`` lets a writer ``fsync`` about once a second: the bound on what a power
cut loses, on top of what a killed process loses (nothing that was flushed).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from posestream.errors import InputError, OutputError

__all__ = ["OutputFile", "OutputClaim", "check_outputs", "claim_outputs", "lock_holder"]

log = logging.getLogger(__name__)

SYNC_EVERY_S = 1.0  # fsync at most this often: what a power cut may lose


@dataclass
class OutputFile:
    """One claimed output: an open, locked file descriptor at ``path`` (nothing truncated yet).

    what: the output's name in messages ("video", "JSON", "CSV").
    """

    what: str
    path: Path
    fd: int
    created: bool  # this claim created the file (it did not exist before)
    regular: bool  # a regular file (lockable, truncatable); False for /dev/null and friends
    made_folders: list[Path] = field(default_factory=list)  # folders this claim made, outermost first
    begun: bool = False
    _t_sync: float = field(default_factory=time.monotonic)
    _retired: list[int] = field(default_factory=list)  # earlier descriptors, closed on release

    def begin(self) -> int:
        """The run starts writing: truncate to empty and return the fd (positioned at 0)."""
        if self.regular:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        self.begun = True
        return self.fd

    def cut_to(self, size: int) -> None:
        """After a failed write: drop everything after ``size`` bytes (the last complete unit)."""
        if self.regular:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:  # truncating frees space, so this is rare; say it, keep the error
                log.warning("%s output '%s': could not cut back to %d bytes: %s", self.what, self.path, size, exc)

    def adopt(self, fd: int) -> None:
        """Hold ``fd`` too (the file about to replace ours at ``path``): lock it now; the old
        descriptor, lock included, is kept until ``release()``, so the path is never unlocked."""
        if self.regular:
            _lock(fd, self.what, self.path)  # a file only we know of: never contended
        self._retired.append(self.fd)
        self.fd = fd

    def sync_due(self) -> bool:
        """True about once per ``SYNC_EVERY_S``; the caller then calls ``sync()``."""
        return self.regular and time.monotonic() - self._t_sync >= SYNC_EVERY_S

    def sync(self) -> None:
        self._t_sync = time.monotonic()
        if self.regular:
            os.fsync(self.fd)

    def error(self, exc: BaseException, doing: str = "write") -> OutputError:
        """An ``OutputError`` naming this output, its path and the system's reason."""
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        hint = " (disk full?)" if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) else ""
        return OutputError(f"cannot {doing} {self.what} output '{self.path}': {reason}{hint}")

    def abandon(self) -> None:
        """The run was refused after writing began: ``release()`` then removes a file it created."""
        self.begun = False

    def release(self) -> None:
        """Unlock and close. A file this claim created and nobody began writing is removed."""
        if self.fd < 0:
            return
        if self.created and not self.begun:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            _remove_folders(self.made_folders)
        for fd in (self.fd, *self._retired):
            os.close(fd)  # closing the descriptor drops the flock
        self.fd, self._retired = -1, []


@dataclass
class OutputClaim:
    """Every output of one run, claimed together. ``release()`` is safe to call more than once."""

    files: dict[str, OutputFile]

    def take(self, what: str) -> OutputFile | None:
        return self.files.get(what)

    def release(self) -> None:
        for f in reversed(self.files.values()):  # last claimed first: folders made early empty last
            f.release()

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_outputs(outputs: dict[str, str | os.PathLike | None], source_files: Iterable[str | os.PathLike] = (),
                  *, renamed: bool = False) -> dict[str, Path]:  # fmt: skip
    """The preflight: validate output paths without touching anything. Returns ``what -> Path``.

    outputs: ``{"video": "out.mp4", "JSON": None, ...}`` (None = not requested).
    source_files: the files the run reads (the source video, or every image of a folder).
    renamed: the writer stages its file and renames it into place (``export``): an existing
    target must then be a regular file (renaming over ``/dev/null`` would replace the device).
    """
    sources = {os.path.realpath(s): str(s) for s in source_files}
    seen: dict[str, str] = {}
    result: dict[str, Path] = {}
    for what, raw in outputs.items():
        if raw is None or str(raw) == "":
            continue
        path = Path(raw)
        real = os.path.realpath(path)
        name = f"{what} output '{raw}'"
        if real in sources or any(_same_file(real, s) for s in sources):
            raise InputError(f"{name} is the source itself ('{sources.get(real, raw)}'): refusing to overwrite the input")
        if real in seen:
            raise InputError(f"{name} is the same file as the {seen[real]} output: give each output its own path")
        seen[real] = what
        if os.path.isdir(real):
            raise InputError(f"{name} is an existing folder (expected a file path, e.g. '{Path(raw) / _example(what)}')")
        if os.path.exists(real):
            if not os.access(real, os.W_OK):
                raise InputError(f"{name} exists and is not writable (check its permissions)")
            if renamed and not os.path.isfile(real):
                raise InputError(f"{name} exists and is not a regular file: refusing to replace it")
            if renamed and not os.access(os.path.dirname(real), os.W_OK | os.X_OK):
                raise InputError(f"{name}: its folder '{os.path.dirname(real)}' is not writable")
        else:
            folder = _nearest_existing(os.path.dirname(real) or ".")
            if not os.path.isdir(folder):
                raise InputError(f"{name}: '{folder}' is a file, so the output's folder cannot be made")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(f"{name}: its folder '{folder}' is not writable")
        result[what] = path
    return result


def claim_outputs(paths: dict[str, Path]) -> OutputClaim:
    """Open and lock every output, truncating nothing. Raises ``InputError`` if one is in use.

    On any failure every file claimed so far is released (and removed if this call created it).
    """
    claim = OutputClaim({})
    try:
        for what, path in paths.items():
            claim.files[what] = _claim_one(what, path)
    except BaseException:
        claim.release()
        raise
    return claim


def _claim_one(what: str, path: Path) -> OutputFile:
    existed = os.path.lexists(path)
    made = _make_folders(path.parent) if not existed else []
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        _remove_folders(made)
        raise InputError(f"{what} output '{path}' cannot be opened for writing: {exc.strerror}") from None
    created = not existed
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    if regular:
        try:
            free = _lock(fd, what, path)
        except OSError as exc:
            free, error = None, exc
        if not free:
            holder = lock_holder(path) if free is False else ""
            if created:  # cannot happen in practice (someone else holds a file we just made): tidy up
                os.unlink(path)
                _remove_folders(made)
            os.close(fd)
            if free is False:
                raise InputError(f"{what} output '{path}' is being written by another run ({holder}); "
                                 "wait for it to finish or choose another path")  # fmt: skip
            raise InputError(f"{what} output '{path}' cannot be locked: {error.strerror}")
    return OutputFile(what, path, fd, created=created, regular=regular, made_folders=made)


def _lock(fd: int, what: str, path: Path) -> bool:
    """flock ``fd``; False if another process holds it. A file system without locks is written unlocked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):  # e.g. NFS without a lock daemon
            log.warning("%s output '%s': its file system has no locks (%s); another run could write it too",
                        what, path, exc.strerror)  # fmt: skip
            return True
        raise
    return True


def lock_holder(path: str | os.PathLike) -> str:
    """Who holds a ``flock`` on ``path``: 'pid 1234: posestream run ...' (Linux), else a phrase."""
    try:
        st = os.stat(path)
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:16039954 0 EOF"
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == key and parts[4].isdigit():
                    return f"pid {parts[4]}{_command_of(parts[4])}"
    except OSError:
        pass
    return "another process"


def _command_of(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return ""
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    return f": {text[:120]}" if text else ""


def _nearest_existing(folder: str) -> str:
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for f in reversed(missing):
        try:
            f.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_folders(made)
            raise InputError(f"cannot make the output folder '{f}': {exc.strerror}") from None
        made.append(f)
    return made


def _remove_folders(made: list[Path]) -> None:
    for f in reversed(made):
        try:
            f.rmdir()
        except OSError:
            return  # not empty any more: something else uses it


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _example(what: str) -> str:
    return {"video": "out.mp4", "JSON": "keypoints.jsonl", "CSV": "keypoints.csv"}.get(what, "out")
