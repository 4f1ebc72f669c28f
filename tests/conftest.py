"""Shared fixtures: where ../shared lives, thread limits, small generated videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The ../shared data folder (POSESTREAM_SHARED overrides), or None when it is absent."""
    path = Path(os.environ.get("POSESTREAM_SHARED", REPO.parent / "shared"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared data folder is absent (set POSESTREAM_SHARED)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _limit_threads() -> None:
    # CI has 2 cores; keep torch from oversubscribing them when several things run.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)
