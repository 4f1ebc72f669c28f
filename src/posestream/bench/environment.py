"""What the figures were measured on: hardware, library versions, commit, machine load."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["describe_environment", "load_average"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]  # src/posestream/bench/ -> the checkout (editable install)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _versions() -> dict[str, str | None]:
    import importlib.metadata

    import av
    import numpy
    import onnxruntime
    import torch

    from posestream import __version__

    try:
        import cv2

        opencv = cv2.__version__
    except ImportError:
        opencv = None
    try:
        onnx_version = importlib.metadata.version("onnx")
    except importlib.metadata.PackageNotFoundError:
        onnx_version = None
    return {
        "posestream": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx_version,
        "av": av.__version__,
        "numpy": numpy.__version__,
        "opencv": opencv,
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _gpu() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    memory_gib = round(props.total_memory / 2**30, 1)
    return {"name": props.name, "memory_gib": memory_gib, "count": torch.cuda.device_count()}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe_environment() -> dict:
    """Hardware and software of this run, JSON-ready."""
    import onnxruntime

    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "ram_gib": _ram_gib(),
        "gpu": _gpu(),
        "platform": platform.platform(),
        "onnxruntime_providers": list(onnxruntime.get_available_providers()),
        "versions": _versions(),
        "git_commit": commit,
        "git_dirty": bool(dirty) if commit else None,
    }
