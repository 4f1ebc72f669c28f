"""One small error hierarchy.

``InputError`` and its children are the user's to fix (a path, a flag, a config key, a model
file): the CLI prints their message on one line and exits with code 2. ``StageError`` is a failure
inside the running graph: exit code 1, naming the stage and the frame. ``OutputError`` is a write
that failed (disk full, I/O error): exit code 1, naming the output and its path.
"""

from __future__ import annotations

__all__ = ["PosestreamError", "InputError", "ConfigError", "ModelFileError", "ExportError", "StageError",
           "OutputError"]


class PosestreamError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(PosestreamError):
    """Bad user input: a missing or unreadable source, a bad flag. Exit code 2."""


class ConfigError(InputError):
    """A config file or ``--set`` override is wrong; the message names the key's path."""


class ModelFileError(InputError):
    """A weights / ONNX / detector file is missing, truncated, of the wrong kind or variant."""


class OutputError(PosestreamError):
    """Writing an output failed (disk full, I/O error, a device gone); the message names the path."""


class ExportError(PosestreamError):
    """Export failed or the exported model disagrees with PyTorch beyond tolerance."""


class StageError(PosestreamError):
    """A stage raised while the graph ran. ``stage`` and ``frame_index`` say where."""

    def __init__(self, stage: str, frame_index: int | None, cause: BaseException, when: str | None = None) -> None:
        where = when or (f"at frame {frame_index}" if frame_index is not None else "before the first frame")
        super().__init__(f"stage '{stage}' failed {where}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.frame_index = frame_index
        self.cause = cause
