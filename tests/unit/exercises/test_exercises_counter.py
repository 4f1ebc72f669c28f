"""Rep counting and form cues on synthetic people (tests/synthetic_motion.py): known angles in,
known reps and cues out, through noise, a dropped keypoint, and keypoints below the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_motion import (
    KP, curl_frame, depth, lunge_frame, observe, push_up_frame, rep_profile, squat_frame,
)  # fmt: skip

from posestream.analytics.angles import joint_angles
from posestream.exercises import ExerciseAnalyzer, load_exercise
from posestream.types import Poses


def run_analyzer(exercise: str, pts, keypoints, scores, track_id: int = 7, threshold: float = 0.3):
    """Feed one person frame by frame, as the live stage does. Returns (events, statuses per frame)."""
    analyzer = ExerciseAnalyzer(load_exercise(exercise), score_threshold=threshold)
    events, statuses = [], []
    for t, kp, sc in zip(pts, keypoints, scores):
        poses = Poses(kp[None], sc[None], np.array([[0, 0, 640, 480]], np.float32), np.array([track_id]))
        frame = analyzer.update(poses, float(t))
        events += frame.events
        statuses.append(frame.people[0] if frame.people else None)
    return events, statuses


def squat_clip(bottoms, *, lean_at_bottom=25.0, asym=None, seed=0):
    t, knee, rep = rep_profile(bottoms, top=172.0)
    d = depth(knee, 172.0, 80.0)
    left = knee + (0 if asym is None else asym * d)
    frames = np.stack([squat_frame(kl, kr, lean_at_bottom * dd) for kl, kr, dd in zip(left, knee, d)])
    kp, sc = observe(frames, seed=seed)
    return t, kp, sc, knee, rep


def test_synthetic_figure_has_the_angles_it_was_built_with():
    # The generators are the ground truth of every test below: check them against angles.py first.
    kp = np.stack([squat_frame(100.0, 120.0, 30.0), curl_frame(45.0, 150.0, 25.0, 10.0),
                   push_up_frame(95.0, 95.0, 140.0), lunge_frame(92.0, 105.0, 12.0)])  # fmt: skip
    a = joint_angles(kp, np.ones((4, 17)))
    np.testing.assert_allclose([a["left_knee"][0], a["right_knee"][0], a["trunk_lean"][0]], [100, 120, 30], atol=1e-6)
    np.testing.assert_allclose([a["left_elbow"][1], a["right_elbow"][1], a["left_shoulder"][1], a["trunk_lean"][1]],
                               [45, 150, 25, 10], atol=1e-6)  # fmt: skip
    np.testing.assert_allclose([a["left_elbow"][2], a["right_elbow"][2], a["left_hip"][2]], [95, 95, 140], atol=1e-6)
    np.testing.assert_allclose([a["right_knee"][3], a["left_knee"][3], a["trunk_lean"][3]], [92, 105, 12], atol=1e-6)


def test_squat_five_reps_with_noise_and_a_dropped_keypoint_cue_on_the_shallow_rep():
    bottoms = [80, 82, 104, 78, 81]  # rep 3 only reaches 104 deg: counted (< 110), not deep (> 95)
    t, kp, sc, knee, rep = squat_clip(bottoms)
    bottom3 = int(np.flatnonzero(rep == 2)[len(np.flatnonzero(rep == 2)) // 2])
    sc[bottom3, KP["left_ankle"]] = 0.05  # dropped at the bottom of rep 3: the right knee carries on
    sc[bottom3 - 20, KP["right_hip"]] = 0.0  # and one more, on the way down
    events, statuses = run_analyzer("squat", t, kp, sc)
    assert [e.rep for e in events] == [1, 2, 3, 4, 5]
    assert [e.cues for e in events] == [(), (), ("go deeper",), (), ()]
    assert all(e.track_id == 7 and e.exercise == "squat" for e in events)
    # Each event's times bracket its dip, and its min angle is that dip's bottom (noise ~1.5 px).
    for r, (e, bottom) in enumerate(zip(events, bottoms)):
        t_bottom = t[rep == r][np.argmin(knee[rep == r])]
        assert e.pts_start < e.pts_turn < e.pts and t[rep == r][0] - 0.1 < e.pts_start
        assert abs(e.pts_turn - t_bottom) < 0.15
        assert abs(e.minimum["knee"] - bottom) < 4.0 and e.maximum["knee"] > 160
    assert statuses[-1].reps == 5 and statuses[-1].phase == "standing"
    assert statuses[bottom3].phase == "bottom" and statuses[bottom3].cues == ()  # cue comes with rep 3's end
    assert {s.phase for s in statuses} == {"standing", "lowering", "bottom", "rising"}


def test_squat_trunk_lean_and_asymmetry_cues():
    t, kp, sc, _, _ = squat_clip([80, 80, 80], lean_at_bottom=25.0)
    events, _ = run_analyzer("squat", t, kp, sc)
    assert [e.cues for e in events] == [(), (), ()]
    t, kp, sc, _, _ = squat_clip([80, 80, 80], lean_at_bottom=60.0)
    assert [e.cues for e in run_analyzer("squat", t, kp, sc)[0]] == [("keep your chest up",)] * 3
    t, kp, sc, _, _ = squat_clip([80, 80, 80], asym=24.0)  # left knee 24 deg straighter at the bottom
    events, _ = run_analyzer("squat", t, kp, sc)
    assert [e.cues for e in events] == [("even out left and right",)] * 3  # mean knee ~92: deep enough


def test_push_up_reps_and_sagging_hips():
    bottoms = [85, 80, 84, 82, 86]
    t, elbow, rep = rep_profile(bottoms, top=168.0)
    hips = np.where(rep == 1, 175 - 45 * depth(elbow, 168, 80), 176.0)  # rep 2 sags to ~131 deg
    frames = np.stack([push_up_frame(e, e, h) for e, h in zip(elbow, hips)])
    kp, sc = observe(frames, seed=1)
    sc[np.flatnonzero(rep == 3)[10], KP["left_wrist"]] = 0.0
    events, _ = run_analyzer("push_up", t, kp, sc)
    assert [e.cues for e in events] == [(), ("keep your body in a line",), (), (), ()]
    assert events[1].minimum["hip"] < 140


def test_lunge_reps_and_leaning_torso():
    bottoms = [90, 92, 88, 91]
    t, front, rep = rep_profile(bottoms, top=172.0)
    d = depth(front, 172.0, 90.0)
    lean = np.where(rep == 0, 40.0 * d, 8.0 * d)  # rep 1 leans forward 40 deg
    frames = np.stack([lunge_frame(f, 175 - 75 * dd, ll) for f, dd, ll in zip(front, d, lean)])
    kp, sc = observe(frames, seed=2)
    sc[np.flatnonzero(rep == 2)[30], KP["left_knee"]] = 0.1  # back knee hidden once: front knee carries on
    events, _ = run_analyzer("lunge", t, kp, sc)
    assert [e.cues for e in events] == [("keep your torso upright",), (), (), ()]


def test_biceps_curl_reps_and_a_half_curl():
    bottoms = [35, 38, 62, 36, 34]  # rep 3 stops at 62 deg: counted (< 70), cue (> 50)
    t, elbow, rep = rep_profile(bottoms, top=165.0)
    frames = np.stack([curl_frame(e, e, 10.0, 2.0) for e in elbow])
    kp, sc = observe(frames, seed=3)
    sc[np.flatnonzero(rep == 0)[25], KP["right_elbow"]] = 0.0
    events, statuses = run_analyzer("biceps_curl", t, kp, sc)
    assert [e.cues for e in events] == [(), (), ("curl all the way up",), (), ()]
    assert statuses[-1].phase == "down"


def test_no_rep_from_keypoints_below_the_score_threshold():
    t, kp, sc, _, _ = squat_clip([80, 80, 80, 80, 80])
    events, statuses = run_analyzer("squat", t, kp, np.full_like(sc, 0.2))  # all below 0.3
    assert events == [] and all(s.reps == 0 and s.value_deg is None for s in statuses)
    assert {s.phase for s in statuses} == {"stand tall"}
    # Only the bottoms hidden (both ankles low-scored while deep): the turn is never seen.
    hidden = sc.copy()
    _, knee, _ = rep_profile([80] * 5, top=172.0)
    hidden[knee < 125, KP["left_ankle"]] = 0.1
    hidden[knee < 125, KP["right_ankle"]] = 0.1
    events, statuses = run_analyzer("squat", t, kp, hidden)
    assert events == [] and statuses[-1].reps == 0


def test_partial_movements_and_noise_at_a_threshold_count_nothing():
    # Dips that stop short of the turn (110 deg), and standing still right at the start threshold.
    t, knee, _ = rep_profile([130, 125, 135], top=172.0)
    frames = np.stack([squat_frame(k, k, 0.0) for k in knee])
    kp, sc = observe(frames, seed=4)
    events, statuses = run_analyzer("squat", t, kp, sc)
    assert events == [] and statuses[-1].reps == 0
    wobble = 160 + 4 * np.sin(np.arange(200) * 1.7)  # +-4 deg around the 160 deg start threshold
    frames = np.stack([squat_frame(k, k, 0.0) for k in wobble])
    kp, sc = observe(frames, seed=5)
    events, statuses = run_analyzer("squat", np.arange(200) / 30, kp, sc)
    phases = [s.phase for s in statuses]
    assert events == [] and sum(a != b for a, b in zip(phases, phases[1:])) <= 1  # hysteresis: no flicker


def test_tracks_count_separately_untracked_people_are_skipped_and_stale_tracks_forgotten():
    t, kp, sc, _, _ = squat_clip([80, 80])
    t2, kp2, sc2, _, _ = squat_clip([80, 80, 80], seed=9)
    n = min(len(t), len(t2))
    analyzer = ExerciseAnalyzer(load_exercise("squat"), forget_after_s=1.0)
    box = np.zeros((3, 4), np.float32)
    reps = {}
    for i in range(len(t2)):
        a = kp[min(i, n - 1)] if i < len(t) else kp[len(t) - 1]
        poses = Poses(np.stack([a, kp2[i], kp2[i]]), np.stack([sc[min(i, len(t) - 1)], sc2[i], sc2[i]]),
                      box, np.array([1, 2, -1]))  # fmt: skip
        frame = analyzer.update(poses, float(t2[i]))
        reps.update({p.track_id: p.reps for p in frame.people})
    assert reps == {1: 2, 2: 3}  # the untracked copy of person 2 counted nothing and shows no status
    frame = analyzer.update(Poses.empty(), float(t2[-1]) + 2.0)
    assert frame.people == () and analyzer.counters == {}


def test_non_coco_model_is_refused_at_construction():
    with pytest.raises(ValueError, match="COCO-17"):
        ExerciseAnalyzer(load_exercise("squat"), keypoint_names=tuple(f"kp{i}" for i in range(21)))
