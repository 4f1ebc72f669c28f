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


def gpu_unavailable_reason() -> str | None:
    """Why tests marked ``gpu`` cannot run here, or None when torch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"no CUDA GPU: torch {torch.__version__} sees none (benchmarks/gpu_check.sh runs these on one)"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``gpu`` skip, saying why, on machines without a CUDA GPU (CI, the dev boxes)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    reason = gpu_unavailable_reason() if gpu_items else None
    for item in gpu_items if reason else ():
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _limit_threads() -> None:
    # CI has 2 cores; keep torch from oversubscribing them when several things run.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(2)


def write_test_video(path: Path, pts_s: list[float], size_wh: tuple[int, int] = (160, 120)) -> Path:
    """An H.264 MP4 whose frame i shows a square at x = 4*i and is stamped at ``pts_s[i]`` seconds.

    Written with PyAV directly (not through posestream), so tests of our reader and writer do not
    check the code against itself. Irregular ``pts_s`` make a variable-frame-rate file.
    """
    from fractions import Fraction

    import av
    import numpy as np

    w, h = size_wh
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0", "preset": "ultrafast"}
        for i, t in enumerate(pts_s):
            img = np.full((h, w, 3), 40, np.uint8)
            x = (4 * i) % (w - 16)
            img[h // 2 - 8 : h // 2 + 8, x : x + 16] = 255
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def make_video(tmp_path: Path):
    """Factory: make_video(n=30, fps=30, vfr=False, size_wh=(160, 120)) -> Path of a fresh MP4."""
    counter = iter(range(1000))

    def make(n: int = 30, fps: float = 30.0, vfr: bool = False, size_wh: tuple[int, int] = (160, 120)) -> Path:
        import numpy as np

        if vfr:  # gaps of 1, 2 or 3 frame periods, seeded
            steps = np.random.default_rng(0).integers(1, 4, size=n)
            pts = list(np.concatenate([[0], np.cumsum(steps[:-1])]) / fps)
        else:
            pts = [i / fps for i in range(n)]
        return write_test_video(tmp_path / f"video{next(counter)}.mp4", pts, size_wh)

    return make
