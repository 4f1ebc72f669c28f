"""Joint angles on hand-built skeletons, unwrapping, angular velocity, zero-phase smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, lfilter

from posestream.analytics.angles import (
    angle_names, angular_velocity, joint_angles, segment_angle, smooth_zero_phase, unwrap_deg,
)
from posestream.keypoints import get_keypoint_set

COCO_KEYPOINTS = get_keypoint_set("coco").keypoints

KP = {n: i for i, n in enumerate(COCO_KEYPOINTS)}


def skeleton(**points: tuple[float, float]) -> np.ndarray:
    """A standing person facing the camera (image y down), arms hanging; ``points`` override keypoints."""
    base = {
        "nose": (150, 60), "left_eye": (155, 55), "right_eye": (145, 55), "left_ear": (160, 58),
        "right_ear": (140, 58),
        "left_shoulder": (160, 100), "right_shoulder": (140, 100),
        "left_elbow": (160, 150), "right_elbow": (140, 150),
        "left_wrist": (160, 190), "right_wrist": (140, 190),
        "left_hip": (160, 200), "right_hip": (140, 200), "left_knee": (160, 300), "right_knee": (140, 300),
        "left_ankle": (160, 400), "right_ankle": (140, 400),
    }
    base.update(points)
    return np.array([base[n] for n in COCO_KEYPOINTS], np.float64)


def angles_of(kp: np.ndarray, scores: np.ndarray | None = None, threshold: float = 0.3) -> dict[str, float]:
    scores = np.ones(17) if scores is None else scores
    return {k: float(v[0]) for k, v in joint_angles(kp[None], scores[None], threshold).items()}


def test_standing_straight_person():
    a = angles_of(skeleton())
    for name in ("left_knee", "right_knee", "left_hip", "right_hip", "left_elbow", "right_elbow"):
        assert a[name] == pytest.approx(180.0), name
    assert a["left_shoulder"] == pytest.approx(0.0) and a["right_shoulder"] == pytest.approx(0.0)  # arms down
    assert a["trunk_lean"] == pytest.approx(0.0)


def test_right_angles():
    kp = skeleton(
        left_ankle=(260, 300),  # shank horizontal: knee 90
        right_knee=(240, 200),  # thigh horizontal (sitting): hip 90; ankle straight below knee: knee 90
        right_ankle=(240, 300),
        left_elbow=(220, 100), left_wrist=(220, 50),  # arm out to the side, forearm up: shoulder 90, elbow 90
    )
    a = angles_of(kp)
    assert a["left_knee"] == pytest.approx(90.0)
    assert a["right_hip"] == pytest.approx(90.0)
    assert a["right_knee"] == pytest.approx(90.0)
    assert a["left_shoulder"] == pytest.approx(90.0)
    assert a["left_elbow"] == pytest.approx(90.0)
    assert a["left_hip"] == pytest.approx(180.0)  # untouched side stays straight
    assert a["right_elbow"] == pytest.approx(180.0)


def test_trunk_lean_sign_and_mirrored_person():
    # shoulders moved so the hip-mid -> shoulder-mid segment leans 30 deg toward the image's +x
    length = 100.0
    dx, dy = length * np.sin(np.radians(30)), -length * np.cos(np.radians(30))
    kp = skeleton(left_shoulder=(150 + dx + 20, 200 + dy), right_shoulder=(150 + dx - 20, 200 + dy),
                  left_knee=(200, 250))
    a = angles_of(kp)
    assert a["trunk_lean"] == pytest.approx(30.0)

    mirrored = kp.copy()
    mirrored[:, 0] = 640 - mirrored[:, 0]  # horizontal flip of the image
    m = angles_of(mirrored)
    assert m["trunk_lean"] == pytest.approx(-30.0)  # same convention: now leaning toward -x
    for name in angle_names()[:-1]:
        assert m[name] == pytest.approx(a[name]), name  # interior angles do not care

    # seen from the back: the person's left is on the image's left; labels swap, nothing else moves
    swapped = kp.copy()
    for n in COCO_KEYPOINTS:
        if n.startswith("left_"):
            r = n.replace("left_", "right_")
            swapped[[KP[n], KP[r]]] = kp[[KP[r], KP[n]]]
    s = angles_of(swapped)
    assert s["trunk_lean"] == pytest.approx(30.0)
    assert s["right_hip"] == pytest.approx(a["left_hip"]) and s["left_hip"] == pytest.approx(a["right_hip"])


def test_nan_below_threshold():
    scores = np.ones(17)
    scores[KP["left_ankle"]] = 0.1
    scores[KP["right_ankle"]] = 0.3  # equal to the threshold: still used
    a = angles_of(skeleton(), scores, threshold=0.3)
    assert np.isnan(a["left_knee"]) and a["right_knee"] == pytest.approx(180.0)
    assert not np.isnan(a["left_hip"]) and not np.isnan(a["trunk_lean"])
    scores[KP["left_hip"]] = 0.0
    a = angles_of(skeleton(), scores, threshold=0.3)
    assert all(np.isnan(a[n]) for n in ("left_knee", "left_hip", "left_shoulder", "trunk_lean"))
    assert not np.isnan(a["right_hip"])


def test_vectorised_over_frames_and_bad_shapes():
    kp = np.stack([skeleton(), skeleton(left_ankle=(260, 300))])
    out = joint_angles(kp, np.ones((2, 17)))
    assert set(out) == set(angle_names()) and all(v.shape == (2,) for v in out.values())
    np.testing.assert_allclose(out["left_knee"], [180.0, 90.0])
    with pytest.raises(ValueError, match="keypoints"):
        joint_angles(np.zeros((2, 16, 2)), np.ones((2, 16)))
    with pytest.raises(ValueError, match="scores"):
        joint_angles(kp, np.ones((2, 16)))


def test_unwrap_rotating_segment_with_nan_gaps():
    # a segment (e.g. a gymnast's trunk) rotating at 200 deg/s for 3 s, at 30 fps
    t = np.arange(90) / 30.0
    truth = 10.0 + 200.0 * t  # 10 -> 603 deg: crosses +-180 several times
    rad = np.radians(truth)
    wrapped = segment_angle(np.zeros((90, 2)), np.stack([np.sin(rad), -np.cos(rad)], axis=1))
    assert wrapped.max() <= 180.0 and wrapped.min() > -180.0
    assert np.max(np.abs(np.diff(wrapped))) > 300  # the wrap jumps are there
    wrapped[20:23] = np.nan  # a short occlusion (3 frames = 20 deg of rotation)
    wrapped[50] = np.nan

    out = unwrap_deg(wrapped)
    finite = np.isfinite(wrapped)
    np.testing.assert_array_equal(np.isnan(out), ~finite)
    np.testing.assert_allclose(out[finite], truth[finite], atol=1e-9)
    assert np.isnan(np.unwrap(wrapped, period=360)[60])  # plain np.unwrap loses everything after a NaN


def test_angular_velocity_with_irregular_pts_and_gaps():
    rng = np.random.default_rng(5)
    pts = np.cumsum(rng.choice([1 / 30, 2 / 30, 3 / 30], size=40))  # dropped frames
    angle = 10.0 + 90.0 * pts  # 90 deg/s
    angle[15:17] = np.nan
    angle[30] = np.nan
    angle[32] = np.nan  # leaves a run of one sample at 31
    vel = angular_velocity(angle, pts)
    finite = np.isfinite(vel)
    np.testing.assert_allclose(vel[finite], 90.0, atol=1e-9)
    assert np.isnan(vel[[15, 16, 30, 31, 32]]).all()
    assert finite.sum() == 40 - 5

    quad = 50.0 * pts**2  # d/dt = 100 t; central differences on uneven spacing are exact for a quadratic
    np.testing.assert_allclose(angular_velocity(quad, pts)[1:-1], 100.0 * pts[1:-1], atol=1e-9)
    with pytest.raises(ValueError, match="increasing"):
        angular_velocity(angle, pts[::-1])


def test_zero_phase_filter_has_no_lag_on_a_sine():
    pts = np.arange(150) / 30.0  # 5 s at 30 fps
    clean = 40.0 * np.sin(2 * np.pi * 1.0 * pts)
    noisy = clean + 8.0 * np.sin(2 * np.pi * 12.0 * pts)  # high-frequency wobble
    out = smooth_zero_phase(noisy, pts, cutoff_hz=4.0)
    inner = slice(30, 120)
    assert np.max(np.abs(out[inner] - clean[inner])) < 0.05 * 40.0

    def lag_frames(y: np.ndarray) -> int:
        lags = np.arange(-5, 6)
        return int(lags[np.argmax([np.dot(np.roll(y, -k)[inner], clean[inner]) for k in lags])])

    assert lag_frames(out) == 0
    b, a = butter(2, 4.0, fs=30.0)
    assert lag_frames(lfilter(b, a, noisy)) >= 1  # a causal filter of the same kind does lag


def test_zero_phase_handles_nan_gaps_and_short_runs():
    pts = np.arange(100) / 30.0
    rng = np.random.default_rng(6)
    x = 90.0 + rng.normal(0, 5, size=100)
    x[40] = np.nan
    x[44] = np.nan  # run 41..43: 3 samples, too short for filtfilt's padding
    out = smooth_zero_phase(x, pts, cutoff_hz=3.0)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(x))
    np.testing.assert_array_equal(out[41:44], x[41:44])  # short run left as is
    assert np.std(np.diff(out[:40])) < 0.5 * np.std(np.diff(x[:40]))  # long runs smoothed
    assert np.std(np.diff(out[45:])) < 0.5 * np.std(np.diff(x[45:]))
    with pytest.raises(ValueError, match="cutoff_hz"):
        smooth_zero_phase(x, pts, cutoff_hz=20.0)


def test_angles_follow_the_set_definition_not_coco_indices():
    mpii = get_keypoint_set("mpii")  # right_ankle is index 0 here, left_ankle 15 in COCO
    coco_kp = skeleton(left_ankle=(260, 300))  # left knee at 90 degrees
    by_name = dict(zip(COCO_KEYPOINTS, coco_kp))
    by_name.update({"pelvis": (150, 200), "thorax": (150, 100), "upper_neck": (150, 80), "head_top": (150, 40)})
    kp = np.array([by_name[n] for n in mpii.keypoints])[None]
    out = joint_angles(kp, np.ones((1, 16)), 0.3, mpii)
    assert set(out) == set(mpii.angle_names)
    assert out["left_knee"][0] == pytest.approx(90.0) and out["right_knee"][0] == pytest.approx(180.0)
    assert joint_angles(np.zeros((1, 17, 2)), np.ones((1, 17)), 0.3, get_keypoint_set("ap10k")) == {}
