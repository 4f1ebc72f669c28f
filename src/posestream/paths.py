"""Where posestream keeps files between runs (light: no third-party imports)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$POSESTREAM_CACHE`` if set, else ``~/.cache/posestream`` (downloaded weights, compiled models)."""
    env = os.environ.get("POSESTREAM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "posestream"
