"""COCO-WholeBody: 133 keypoints = 17 body + 6 feet + 68 face + 21 per hand.

Jin et al., "Whole-Body Human Pose Estimation in the Wild" (ECCV 2020),
https://github.com/jin-s13/COCO-WholeBody. Order: the 17 COCO body keypoints, then left big toe,
left small toe, left heel, the same on the right, then the 68 face landmarks of the 300-W / iBUG
layout ('face-0' .. 'face-67'), then the left and the right hand (root, then thumb, forefinger,
middle, ring and pinky finger, four points each from the palm out). Skeleton: COCO's, each ankle to
its three foot points, each hand root along its five fingers (the face has no limbs); names and OKS
sigmas are those of the official whole-body evaluation (as mmpose's coco_wholebody.py lists them).
Flip pairs: left/right names, plus the face landmarks mirrored through the iBUG layout.
"""

from __future__ import annotations

from posestream.keypoints.body import COCO, FOOT_SIGMAS, body_angles
from posestream.keypoints.keypoint_set import KeypointSet, flip_pairs_by_name

__all__ = ["WHOLEBODY", "FACE_MIRROR"]

_FEET = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
_FACE = tuple(f"face-{i}" for i in range(68))
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand(side: str) -> tuple[str, ...]:
    return (f"{side}_hand_root",) + tuple(f"{side}_{finger}{j}" for finger in _FINGERS for j in range(1, 5))


_NAMES = COCO.keypoints + _FEET + _FACE + _hand("left") + _hand("right")
_INDEX = {name: i for i, name in enumerate(_NAMES)}

# The 68-landmark face mirrored left-right: jaw 0-16 around 8, brows 17-21 / 22-26, nose bridge
# 27-30 on the axis, nostrils 31-35 around 33, eyes 36-41 / 42-47 (corner to corner), outer lips
# 48-59 around 51 and 57, inner lips 60-67 around 62 and 66.
FACE_MIRROR: tuple[tuple[int, int], ...] = (
    *((i, 16 - i) for i in range(8)),
    *((17 + i, 26 - i) for i in range(5)),
    (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),
    (60, 64), (61, 63), (65, 67),
)  # fmt: skip


def _skeleton() -> tuple[tuple[int, int], ...]:
    feet = tuple((_INDEX[f"{side}_ankle"], _INDEX[f"{side}_{part}"])
                 for side in ("left", "right") for part in ("big_toe", "small_toe", "heel"))  # fmt: skip
    hands = []
    for side in ("left", "right"):
        for finger in _FINGERS:
            chain = [f"{side}_hand_root"] + [f"{side}_{finger}{j}" for j in range(1, 5)]
            hands += [(_INDEX[a], _INDEX[b]) for a, b in zip(chain, chain[1:])]
    return COCO.skeleton + feet + tuple(hands)


_FACE_SIGMAS = (
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032,
    0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011,
    0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010,
    0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034,
    0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008,
)  # fmt: skip
_HAND_SIGMAS = (
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031,
)  # fmt: skip
_FACE_OFFSET = _INDEX["face-0"]

WHOLEBODY = KeypointSet(
    name="wholebody",
    keypoints=_NAMES,
    skeleton=_skeleton(),
    flip_pairs=flip_pairs_by_name(_NAMES)
    + tuple((_FACE_OFFSET + a, _FACE_OFFSET + b) for a, b in FACE_MIRROR),
    sigmas=COCO.sigmas + tuple(FOOT_SIGMAS[n] for n in _FEET) + _FACE_SIGMAS + _HAND_SIGMAS + _HAND_SIGMAS,
    angles=body_angles(ankles_to="big_toe"),
    source="COCO-WholeBody (Jin et al., ECCV 2020), https://github.com/jin-s13/COCO-WholeBody",
)
