"""KeypointSet and the registry: every set is valid, serialises losslessly, flips consistently."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.keypoints import (
    KEYPOINT_SETS,
    JointAngle,
    KeypointSet,
    SegmentAngle,
    flip_pairs_by_name,
    get_keypoint_set,
    keypoint_set_for,
    parse_keypoint_set,
    side_of,
)
from posestream.keypoints.wholebody import FACE_MIRROR

EXPECTED_K = {"coco": 17, "coco_25": 25, "wholebody": 133, "mpii": 16, "aic": 14, "ap10k": 17, "apt36k": 17}


def test_registry_holds_every_easy_vitpose_set_with_its_size():
    assert {name: s.num_keypoints for name, s in KEYPOINT_SETS.items()} == EXPECTED_K


@pytest.mark.parametrize("name", sorted(EXPECTED_K))
def test_each_set_is_complete_and_round_trips(name):
    kset = get_keypoint_set(name)
    assert kset.sigmas is not None and len(kset.sigmas) == kset.num_keypoints
    assert len(kset.limb_colors) == len(kset.skeleton) > 0 and kset.source
    assert KeypointSet.from_json(kset.to_json()) == kset
    perm = kset.flip_index
    assert sorted(perm) == list(range(kset.num_keypoints)) and np.array_equal(
        perm[perm], np.arange(len(perm))
    )
    for a, b in kset.flip_pairs:  # a flip pair joins a left and a right keypoint (or two face landmarks)
        sides = {side_of(kset.keypoints[a]), side_of(kset.keypoints[b])}
        assert sides == {"left", "right"} or kset.keypoints[a].startswith("face-"), (a, b)
    # every named left_/right_ keypoint with a mirror is paired
    assert set(flip_pairs_by_name(kset.keypoints)) <= set(kset.flip_pairs)


def test_wholebody_layout_feet_hands_and_face_mirror():
    wb = get_keypoint_set("wholebody")
    assert wb.keypoints[:17] == get_keypoint_set("coco").keypoints
    assert wb.keypoints[17:23] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                                   "right_small_toe", "right_heel")  # fmt: skip
    assert (
        wb.keypoints[23] == "face-0"
        and wb.keypoints[91] == "left_hand_root"
        and wb.keypoints[112] == "right_hand_root"
    )
    assert len(wb.skeleton) == 19 + 6 + 2 * 20
    # each hand is a tree: 20 edges over its 21 points, every finger a chain from the root
    for root in (91, 112):
        edges = [(a, b) for a, b in wb.skeleton if root <= a < root + 21]
        assert len(edges) == 20 and sum(a == root for a, _ in edges) == 5
    face = {a: b for a, b in FACE_MIRROR} | {b: a for a, b in FACE_MIRROR}
    assert face[0] == 16 and face[36] == 45 and face[48] == 54 and 30 not in face  # nose tip on the axis
    assert get_keypoint_set("wholebody").flip_index[23 + 8] == 23 + 8  # the chin stays


def test_angles_only_where_the_set_defines_them():
    assert get_keypoint_set("ap10k").angles == () and get_keypoint_set("apt36k").angles == ()
    coco = get_keypoint_set("coco")
    joints = ("knee", "hip", "elbow", "shoulder")
    assert coco.angle_names == tuple(f"{s}_{j}" for j in joints for s in ("left", "right")) + ("trunk_lean",)
    assert "left_ankle" in get_keypoint_set("coco_25").angle_names
    for name in ("mpii", "aic", "wholebody"):
        assert {"left_knee", "trunk_lean"} <= set(get_keypoint_set(name).angle_names)


def test_lookup_by_name_count_and_names():
    assert keypoint_set_for(17).name == "coco" and keypoint_set_for(133).name == "wholebody"
    assert keypoint_set_for(16).name == "mpii" and keypoint_set_for(14).name == "aic"
    generic = keypoint_set_for(5)
    assert generic.keypoints == tuple(f"keypoint_{i}" for i in range(5)) and generic.sigmas is None
    ap10k = get_keypoint_set("AP10K")
    assert keypoint_set_for(names=ap10k.keypoints) is ap10k
    custom = keypoint_set_for(names=("left_hip", "right_hip", "neck"))
    assert custom.name == "custom" and custom.flip_pairs == ((0, 1),)
    assert parse_keypoint_set("133").name == "wholebody" and parse_keypoint_set("mpii").num_keypoints == 16
    with pytest.raises(ValueError, match="unknown keypoint set 'cocoa'.*coco, coco_25, wholebody"):
        get_keypoint_set("cocoa")


@pytest.mark.parametrize("changes, message", [
    ({"keypoints": ("a", "a")}, "duplicate keypoint names"),
    ({"skeleton": ((0, 5),)}, "skeleton pair \\(0, 5\\)"),
    ({"flip_pairs": ((0, 1), (1, 2))}, "a keypoint appears in more than one flip pair"),
    ({"sigmas": (0.1,)}, "sigmas must be 3 positive numbers"),
    ({"skeleton": ((0, 1),), "limb_colors": ()}, "limb_colors"),
    ({"angles": (JointAngle("x", ("a", "b", "zz")),)}, "angle 'x' uses unknown keypoints \\['zz'\\]"),
    ({"angles": (SegmentAngle("s", (), ("a",)),)}, "segment angle 's' needs start and end"),
])  # fmt: skip
def test_invalid_definitions_name_the_set_and_field(changes, message):
    base = {"name": "tiny", "keypoints": ("a", "b", "c")}
    with pytest.raises(ValueError, match=f"keypoint set 'tiny': {message}"):
        KeypointSet(**{**base, **changes})


def test_from_json_names_the_source_of_a_bad_definition():
    with pytest.raises(ValueError, match="model.onnx metadata: not a valid keypoint set"):
        KeypointSet.from_json({"name": "x"}, "model.onnx metadata")


def test_flip_pairs_by_name_handles_prefix_styles():
    assert flip_pairs_by_name(("L_Eye", "R_Eye", "Nose", "left_paw", "right_paw", "left_x")) == (
        (0, 1),
        (3, 4),
    )
