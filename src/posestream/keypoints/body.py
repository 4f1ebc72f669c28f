"""Human body keypoint sets: COCO-17, COCO-25 (COCO + feet), MPII-16, AI Challenger-14.

Names, orders, skeletons, flip pairs and OKS sigmas are facts of each dataset's definition; the
source of each is named on the set. Limb colours follow the body side (``side_colors``).
"""

from __future__ import annotations

from posestream.keypoints.keypoint_set import JointAngle, KeypointSet, SegmentAngle, flip_pairs_by_name

__all__ = ["COCO", "COCO_25", "MPII", "AIC", "body_angles", "FOOT_SIGMAS"]


def body_angles(*, ankles_to: str | None = None) -> tuple[JointAngle | SegmentAngle, ...]:
    """Joint angles of a set with left/right shoulders, elbows, wrists, hips, knees, ankles.

    Interior angles (vertex in the middle): knee = hip-knee-ankle, hip = shoulder-hip-knee,
    elbow = shoulder-elbow-wrist, shoulder = hip-shoulder-elbow, per side; ``trunk_lean`` = the signed
    angle of hip midpoint -> shoulder midpoint from the image vertical. ``ankles_to``: a foot keypoint
    ('big_toe') adds ``left_ankle`` / ``right_ankle`` = knee-ankle-<side>_<ankles_to>.
    """
    joints = {"knee": ("hip", "ankle"), "hip": ("shoulder", "knee"), "elbow": ("shoulder", "wrist"),
              "shoulder": ("hip", "elbow")}  # fmt: skip
    if ankles_to is not None:
        joints["ankle"] = ("knee", ankles_to)
    angles: list[JointAngle | SegmentAngle] = [
        JointAngle(f"{side}_{joint}", (f"{side}_{a}", f"{side}_{joint}", f"{side}_{c}"))
        for joint, (a, c) in joints.items()
        for side in ("left", "right")
    ]
    angles.append(SegmentAngle("trunk_lean", ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")))
    return tuple(angles)


# COCO 2017 person keypoints (Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014;
# https://cocodataset.org/#keypoints-2020). Skeleton: the 'skeleton' of the person category in
# person_keypoints_*.json (given there 1-based). Sigmas: the per-keypoint OKS constants of the COCO
# keypoint evaluation (cocodataset.org/#keypoints-eval; pycocotools' COCOeval default).
_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
_COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
_COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

COCO = KeypointSet(
    name="coco",
    keypoints=_COCO_NAMES,
    skeleton=_COCO_SKELETON,
    flip_pairs=flip_pairs_by_name(_COCO_NAMES),
    sigmas=_COCO_SIGMAS,
    angles=body_angles(),
    source="COCO 2017 person keypoints, https://cocodataset.org/#keypoints-2020",
)

# COCO-25: easy_ViTPose's "coco_25" model (COCO 2017 + the CMU foot keypoints of Cao et al.,
# https://cmu-perceptual-computing-lab.github.io/foot_keypoint_dataset/), in the order and with the
# skeleton of easy_ViTPose's ``joints_dict()['coco_25']`` (OpenPose-like: a neck between the ears and
# shoulders, a mid-hip). Sigmas: COCO's for the COCO joints; the COCO-WholeBody foot sigmas
# (``FOOT_SIGMAS``) for the feet; nobody defines one for 'neck' and 'hip' (midpoints): we use the
# shoulders' (0.079) and the hips' (0.107).
FOOT_SIGMAS = {"left_big_toe": 0.068, "left_small_toe": 0.066, "left_heel": 0.066,
               "right_big_toe": 0.092, "right_small_toe": 0.094, "right_heel": 0.094}  # fmt: skip
_COCO_25_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "neck",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
_COCO_25_SKELETON = (
    (17, 15), (15, 12), (18, 16), (16, 13), (12, 14), (13, 14), (5, 14), (6, 5), (7, 5), (6, 8), (7, 9),
    (8, 10), (9, 11), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (17, 21), (18, 24), (19, 20), (22, 23),
    (19, 21), (22, 24), (5, 0),
)  # fmt: skip
_SIGMA_BY_NAME = {**dict(zip(_COCO_NAMES, _COCO_SIGMAS)), **FOOT_SIGMAS, "neck": 0.079, "hip": 0.107}

COCO_25 = KeypointSet(
    name="coco_25",
    keypoints=_COCO_25_NAMES,
    skeleton=_COCO_25_SKELETON,
    flip_pairs=flip_pairs_by_name(_COCO_25_NAMES),
    sigmas=tuple(_SIGMA_BY_NAME[n] for n in _COCO_25_NAMES),
    angles=body_angles(ankles_to="big_toe"),
    source="easy_ViTPose coco_25 (COCO + CMU foot keypoints), https://github.com/JunkyByte/easy_ViTPose",
)

# MPII Human Pose (Andriluka et al., CVPR 2014; http://human-pose.mpi-inf.mpg.de/): the 16 joint ids
# of the official annotation (0 r-ankle ... 15 l-wrist). MPII is scored with PCKh, so it has no
# official OKS sigmas; these are the ones mmpose defines for it (configs/_base_/datasets/mpii.py, as
# used by ViTPose), as is the skeleton.
_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
    "left_elbow", "left_wrist",
)  # fmt: skip
MPII = KeypointSet(
    name="mpii",
    keypoints=_MPII_NAMES,
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (8, 12),
        (12, 11),
        (11, 10),
        (8, 13),
        (13, 14),
        (14, 15),
    ),  # fmt: skip
    flip_pairs=flip_pairs_by_name(_MPII_NAMES),
    sigmas=(
        0.089,
        0.083,
        0.107,
        0.107,
        0.083,
        0.089,
        0.026,
        0.026,
        0.026,
        0.026,
        0.062,
        0.072,
        0.179,
        0.179,
        0.072,
        0.062,
    ),  # fmt: skip
    angles=body_angles(),
    source="MPII Human Pose, http://human-pose.mpi-inf.mpg.de/ (sigmas: mmpose)",
)

# AI Challenger keypoints (Wu et al., "AI Challenger: A Large-scale Dataset for Going Deeper in Image
# Understanding", 2017; https://github.com/AIChallenger/AI_Challenger_2017): 14 keypoints in the
# official order; the OKS sigmas of the official keypoint evaluation; skeleton as in mmpose's aic.py.
_AIC_NAMES = (
    "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck",
)  # fmt: skip
AIC = KeypointSet(
    name="aic",
    keypoints=_AIC_NAMES,
    skeleton=(
        (2, 1),
        (1, 0),
        (0, 13),
        (13, 3),
        (3, 4),
        (4, 5),
        (8, 7),
        (7, 6),
        (6, 9),
        (9, 10),
        (10, 11),
        (12, 13),
        (0, 6),
        (3, 9),
    ),  # fmt: skip
    flip_pairs=flip_pairs_by_name(_AIC_NAMES),
    sigmas=(
        0.01388152,
        0.01515228,
        0.01057665,
        0.01417709,
        0.01497891,
        0.01402144,
        0.03909642,
        0.03686941,
        0.01981803,
        0.03843971,
        0.03412318,
        0.02415081,
        0.01291456,
        0.01236173,
    ),  # fmt: skip
    angles=body_angles(),
    source="AI Challenger 2017 keypoints, https://github.com/AIChallenger/AI_Challenger_2017",
)
