"""Top-down pose estimation: boxes in, keypoints out, over any ``PoseBackend``.

``TopDownEstimator`` cuts crops with OpenCV and decodes with numpy on the CPU;
``DeviceTopDownEstimator`` (``estimation.device``, needs torch) does both on the model's torch
device; ``FrameBatcher`` runs the people of consecutive frames through either in one call.
"""

from posestream.estimation.frame_batcher import FrameBatcher
from posestream.estimation.topdown import TopDownEstimator

__all__ = ["TopDownEstimator", "FrameBatcher"]
