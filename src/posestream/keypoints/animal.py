"""Quadruped keypoint sets: AP-10K and APT-36K (17 keypoints each, the same definition).

AP-10K: Yu et al., "AP-10K: A Benchmark for Animal Pose Estimation in the Wild" (NeurIPS 2021
Datasets and Benchmarks), https://github.com/AlexTheBad/AP-10K: keypoint order and names of its
annotation files (left eye ... right back paw), skeleton and OKS sigmas as mmpose's ap10k.py
defines them (used by ViTPose+). APT-36K (Yang et al., NeurIPS 2022,
https://github.com/pandorgan/APT-36K) annotates the same 17 keypoints; ViTPose+ trains its APT-36K
head with the AP-10K channel configuration. No angles are defined for animals.
"""

from __future__ import annotations

from dataclasses import replace

from posestream.keypoints.keypoint_set import KeypointSet, flip_pairs_by_name

__all__ = ["AP10K", "APT36K"]

_NAMES = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail",
    "left_shoulder", "left_elbow", "left_front_paw", "right_shoulder", "right_elbow", "right_front_paw",
    "left_hip", "left_knee", "left_back_paw", "right_hip", "right_knee", "right_back_paw",
)  # fmt: skip
_SKELETON = (
    (0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (5, 6), (6, 7), (3, 8), (8, 9), (9, 10),
    (4, 11), (11, 12), (12, 13), (4, 14), (14, 15), (15, 16),
)  # fmt: skip
_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062,
    0.107, 0.087, 0.089, 0.107, 0.087, 0.089,
)  # fmt: skip

AP10K = KeypointSet(
    name="ap10k",
    keypoints=_NAMES,
    skeleton=_SKELETON,
    flip_pairs=flip_pairs_by_name(_NAMES),
    sigmas=_SIGMAS,
    source="AP-10K (Yu et al., NeurIPS 2021), https://github.com/AlexTheBad/AP-10K",
)
APT36K = replace(
    AP10K, name="apt36k",
    source="APT-36K (Yang et al., NeurIPS 2022), https://github.com/pandorgan/APT-36K (AP-10K keypoints)",
)  # fmt: skip
