"""Keypoint vocabularies: the ``KeypointSet`` type and the registry of known sets.

    from posestream.keypoints import get_keypoint_set
    coco = get_keypoint_set("coco")      # names, skeleton + colours, flip pairs, OKS sigmas, angles

A set travels with the pose model (``backend.info.keypoint_set``); nothing downstream of the model
hard-codes a keypoint name.
"""

from posestream.keypoints.keypoint_set import (
    SIDE_COLORS_BGR,
    JointAngle,
    KeypointSet,
    SegmentAngle,
    flip_pairs_by_name,
    side_colors,
    side_of,
)
from posestream.keypoints.registry import (
    DEFAULT_KEYPOINT_SET,
    KEYPOINT_SETS,
    get_keypoint_set,
    keypoint_set_for,
    keypoint_set_names,
    parse_keypoint_set,
)

__all__ = [
    "KeypointSet",
    "JointAngle",
    "SegmentAngle",
    "KEYPOINT_SETS",
    "DEFAULT_KEYPOINT_SET",
    "get_keypoint_set",
    "keypoint_set_for",
    "keypoint_set_names",
    "parse_keypoint_set",
    "flip_pairs_by_name",
    "side_colors",
    "side_of",
    "SIDE_COLORS_BGR",
]
