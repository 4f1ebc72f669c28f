"""posestream: real-time human pose estimation on video with ViTPose.

``posestream.track(source, ...)`` and ``posestream.PoseTracker(...)`` are the Python API (see
``posestream.api``); they are imported on first use, so ``import posestream`` stays light.
"""

__version__ = "0.1.0"

_API = ("track", "PoseTracker", "TrackStream", "Result", "Person")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from posestream import api

        return getattr(api, name)
    raise AttributeError(f"module 'posestream' has no attribute {name!r}")
