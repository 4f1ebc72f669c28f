"""Keypoint-driven boxes: a posed person's next box follows their keypoints; the detector comes back
every N frames, when nobody is tracked, and at once when someone's confidence drops."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.tracking.keypoint_boxes import DetectionSchedule, KeypointBoxes, keypoint_boxes


def skeleton_at(x: float, y: float, score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """One person, 17 keypoints spread over a 40 x 100 px body whose top-left is (x, y)."""
    rng = np.random.default_rng(0)
    offsets = rng.uniform([0, 0], [40, 100], (17, 2))
    offsets[0], offsets[1] = (0, 0), (40, 100)  # the extremes: the tight box is exactly 40 x 100
    return (offsets + [x, y])[None].astype(np.float32), np.full((1, 17), score, np.float32)


def test_box_of_confident_keypoints_is_padded_about_its_centre():
    keypoints, scores = skeleton_at(100, 50)
    xyxy, ok = keypoint_boxes(keypoints, scores, score_threshold=0.3, padding=1.1)
    assert ok.tolist() == [True]
    np.testing.assert_allclose(xyxy[0], [98, 45, 142, 155], atol=1e-4)
    scores[0, 4:] = 0.1  # only 4 confident keypoints left: still a box; 3: none
    assert keypoint_boxes(keypoints, scores, 0.3)[1].tolist() == [True]
    scores[0, 3] = 0.1
    assert keypoint_boxes(keypoints, scores, 0.3)[1].tolist() == [False]


def test_boxes_follow_a_moving_person_between_detections_and_hand_back_when_confidence_drops():
    schedule = DetectionSchedule(detect_every=10)
    boxes = KeypointBoxes(schedule, score_threshold=0.3, min_confidence=0.5)
    ids = np.array([7])
    tracker_box = np.array([[0, 0, 10, 10]], np.float32)  # a stale motion prediction
    detected_frames, posed_boxes = [], []
    for frame in range(12):
        x = 100 + 8 * frame  # walking right at 8 px per frame
        detected = schedule.should_detect(frame)
        detected_frames.append(frame) if detected else None
        box = boxes.boxes_for(tracker_box, ids, detected=detected)
        posed_boxes.append(box[0].copy())
        score = 0.9 if frame != 6 else 0.2  # frame 6: occluded, the keypoints are not to be trusted
        boxes.update(ids, *skeleton_at(x, 50, score))
    # The detector ran on frame 0, on frame 7 (confidence dropped on 6) and never else up to 11.
    assert detected_frames == [0, 7]
    # Skipped frames were posed in the previous frame's keypoint box: 8 px behind, moving with them.
    for frame in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11):
        expected_left = 100 + 8 * (frame - 1) - 2  # padding 1.1 on a 40 px wide body: 2 px each side
        assert posed_boxes[frame][0] == pytest.approx(expected_left, abs=1e-3), frame
    assert boxes.used == 10 and schedule.skipped == 10 and schedule.detections == 2


def test_every_n_frames_even_when_confident_and_live_slow_down_stretches_it():
    schedule = DetectionSchedule(detect_every=3, max_every=12)
    runs = [f for f in range(10) if schedule.should_detect(f) or schedule.report(True, 1)]
    assert runs == [0, 3, 6, 9]
    schedule.slow_down()
    schedule.slow_down()
    schedule.slow_down()
    assert schedule.every == 12  # capped
    schedule.speed_up()
    assert schedule.every == 6
    schedule.report(True, 0)  # nobody posed: someone may appear, detect at once
    assert schedule.should_detect(10)
