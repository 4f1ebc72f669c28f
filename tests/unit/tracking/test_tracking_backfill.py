"""Backfill: a confirmed track reported from the first frame its person was detected."""

import math

import numpy as np

from posestream.pipeline import Many
from posestream.stages.track import TrackStage
from posestream.tracking.backfill import HeldFrame, backfill_track
from posestream.tracking.bytetrack import ByteTrack
from posestream.types import Detections, Frame, Packet


def _frame(t, boxes, scores, taken=()):
    det = None if boxes is None else np.array(boxes, np.float64).reshape(-1, 4)
    sc = None if scores is None else np.array(scores, np.float64)
    return HeldFrame(t, det, sc, np.array(taken, np.float64).reshape(-1, 4))


def test_walks_back_through_overlapping_detections_and_interpolates_a_short_gap():
    box = lambda x: [x, 0, x + 20, 50]  # noqa: E731 - a person moving 2 px per frame
    frames = [_frame(0.0, [box(0)], [0.15]), _frame(0.1, [], []), _frame(0.2, None, None),  # gap: missed, skipped
              _frame(0.3, [box(6), [200, 0, 220, 50]], [0.3, 0.9])]  # fmt: skip
    found = backfill_track(frames, np.array(box(8), float), 0.4, max_gap_s=0.35)
    assert sorted(found) == [0, 1, 2, 3]
    assert found[3][1] == 0.3 and np.allclose(found[3][0], box(6))  # the overlapping one, not the other person
    assert found[0][1] == 0.15 and np.allclose(found[0][0], box(0))  # down to the detector's threshold
    assert math.isnan(found[1][1]) and np.allclose(found[1][0], box(2))  # interpolated in the gap
    assert np.allclose(found[2][0], box(4))
    # the same gap is too long when gaps may last only 0.25 s: it stops before it
    assert sorted(backfill_track(frames, np.array(box(8), float), 0.4, max_gap_s=0.25)) == [3]


def test_detections_other_tracks_hold_are_not_taken():
    frames = [_frame(0.0, [[0, 0, 20, 50]], [0.9], taken=[[0, 0, 20, 50]])]
    assert backfill_track(frames, np.array([1.0, 0, 21, 50]), 0.1) == {}


def _packet(i, boxes, scores):
    img = np.zeros((60, 240, 3), np.uint8)
    return Packet(frame=Frame(i, i / 10, 0.0, img),
                  detections=Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)))


def test_track_stage_holds_frames_back_and_reports_the_person_from_their_first_detection():
    # scores below the new-track threshold at first: ByteTrack confirms the person at frame 3 only
    scores = [0.2, 0.3, 0.45, 0.6, 0.7, 0.7, 0.7]
    stage = TrackStage(ByteTrack(new_track_threshold=0.5, track_activation_threshold=0.4), backfill_s=0.35)
    emitted = []
    for i, s in enumerate(scores):
        out = stage.process(_packet(i, [[10 + 2 * i, 0, 30 + 2 * i, 50]], [s]))
        assert isinstance(out, Many)
        emitted += list(out)
        assert len(emitted) == max(0, i - 3)  # 0.35 s of frames held back at 10 fps
    emitted += stage.flush()
    assert [p.index for p in emitted] == list(range(7))
    ids = [p.tracks.track_id.tolist() for p in emitted]
    assert ids == [[1]] * 7  # from frame 0, where the detector first saw them
    assert emitted[0].tracks.score.tolist() == [np.float32(0.2)]
    plain = TrackStage(ByteTrack(new_track_threshold=0.5, track_activation_threshold=0.4))
    without = [plain.process(_packet(i, [[10 + 2 * i, 0, 30 + 2 * i, 50]], [s])) for i, s in enumerate(scores)]
    assert [len(p.tracks) for p in without] == [0, 0, 0, 0, 1, 1, 1]  # what backfill adds: frames 0-3
