"""Top-down pose estimation: boxes in, keypoints out, over any ``PoseBackend``."""

from posestream.estimation.topdown import TopDownEstimator

__all__ = ["TopDownEstimator"]
