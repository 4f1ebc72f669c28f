"""ByteTrack golden tests on scripted detection sequences (30 fps timestamps unless noted)."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.tracking.bytetrack import ByteTrack
from posestream.tracking.matching import box_iou
from posestream.types import Detections, Tracks

FPS = 30.0


def box(cx: float, cy: float = 300.0, w: float = 50.0, h: float = 150.0) -> np.ndarray:
    """(4,) xyxy box around a centre."""
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def dets(*items: tuple[np.ndarray, float]) -> Detections:
    if not items:
        return Detections.empty()
    return Detections(np.stack([b for b, _ in items]), np.array([s for _, s in items], np.float32))


def id_at(tracks: Tracks, xyxy: np.ndarray) -> int | None:
    """Id of the reported track whose box is ``xyxy`` (reported boxes are the detection boxes)."""
    hits = np.nonzero(np.all(tracks.xyxy == xyxy[None], axis=1))[0]
    assert len(hits) <= 1
    return int(tracks.track_id[hits[0]]) if len(hits) else None


def walk(tracker: ByteTrack, frames: list[int], x_of, score_of=lambda f: 0.9, clock=lambda f: f / FPS):
    """One person at x_of(f) (None = not detected) for each frame index f; returns id per frame."""
    ids = []
    for f in frames:
        x = x_of(f)
        out = tracker.update(dets((box(x), score_of(f))) if x is not None else dets(), clock(f))
        ids.append(id_at(out, box(x)) if x is not None else None)
    return ids


def test_two_people_crossing_keep_their_ids():
    tracker = ByteTrack()
    first_a = first_b = None
    max_overlap = 0.0
    for f in range(50):
        a = box(100 + 8 * f, cy=300, h=160)
        b = box(500 - 8 * f, cy=320, w=55, h=170)
        max_overlap = max(max_overlap, box_iou(a[None], b[None])[0, 0])
        out = tracker.update(dets((b, 0.85), (a, 0.9)), f / FPS)
        if f == 0:
            first_a, first_b = id_at(out, a), id_at(out, b)
            assert first_a is not None and first_b is not None and first_a != first_b
        assert (id_at(out, a), id_at(out, b)) == (first_a, first_b), f"ids swapped or lost at frame {f}"
    assert max_overlap > 0.6, "the scene must make the boxes overlap heavily mid-way"


def _score_dip(low_score_threshold: float) -> list[int | None]:
    """10 frames at 0.9, 10 frames at 0.3 (a low detection for activation 0.5), 10 frames at 0.9."""
    tracker = ByteTrack(
        track_activation_threshold=0.5,
        new_track_threshold=0.6,
        low_score_threshold=low_score_threshold,
        lost_track_buffer=5,
    )
    return walk(tracker, list(range(30)), lambda f: 100 + 5 * f, lambda f: 0.3 if 10 <= f < 20 else 0.9)


def test_low_score_stretch_keeps_id_through_second_association():
    ids = _score_dip(low_score_threshold=0.1)
    assert ids == [1] * 30


def test_without_second_association_the_low_score_stretch_loses_the_id():
    ids = _score_dip(low_score_threshold=0.5)  # low band (0.5, 0.5) is empty: no second association
    assert ids[:10] == [1] * 10
    assert ids[10:20] == [None] * 10, "0.3 detections must not be reported without the second association"
    assert ids[21] not in (None, 1), "after 10 missed frames (> buffer 5) the person gets a new id"


@pytest.mark.parametrize(("hidden", "same_id"), [(3, True), (10, True), (11, False), (20, False)])
def test_occlusion_shorter_than_buffer_keeps_id_longer_gets_new_one(hidden, same_id):
    tracker = ByteTrack(lost_track_buffer=10)
    frames = list(range(20 + hidden + 5))
    ids = walk(tracker, frames, lambda f: None if 20 <= f < 20 + hidden else 100 + 3 * f)
    assert ids[19] == 1
    back = ids[20 + hidden + 1]  # reported once re-found (old id) or confirmed (new id)
    assert (back == 1) is same_id, ids


def test_buffer_is_a_time_not_a_count_of_calls():
    """Frames never delivered (no update call) still count: 40 frames > buffer 30 -> new id."""
    x = lambda f: 100 + 2 * f  # noqa: E731
    ids = walk(ByteTrack(), list(range(10)) + list(range(50, 55)), x)
    assert ids[9] == 1 and ids[-1] not in (None, 1)
    ids = walk(ByteTrack(), list(range(10)) + list(range(30, 35)), x)  # 20 frames: within the buffer
    assert ids == [1] * 15


def test_dropped_frames_gap_keeps_association_and_per_call_stepping_would_not():
    """A fast walker (15 px/frame, box 50 px wide); the timestamps jump by 5 frames at frame 10."""
    frames = list(range(10)) + list(range(15, 25))
    x = lambda f: 100 + 15 * f  # noqa: E731
    real = ByteTrack()
    for f in frames[:10]:
        real.update(dets((box(x(f)), 0.9)), f / FPS)
    predicted = real.predict_only(15 / FPS)
    assert box_iou(predicted.xyxy, box(x(15))[None])[0, 0] > 0.7, "prediction over the real dt lands on them"
    assert walk(ByteTrack(), frames, x) == [1] * 20

    # The same stream seen by a tracker that steps one frame per call (timestamps = call count).
    per_call = ByteTrack()
    clock = {f: i / FPS for i, f in enumerate(frames)}
    for f in frames[:10]:
        per_call.update(dets((box(x(f)), 0.9)), clock[f])
    predicted = per_call.predict_only(clock[15])
    assert box_iou(predicted.xyxy, box(x(15))[None])[0, 0] < 0.1, "one-frame prediction falls short"
    ids = walk(ByteTrack(), frames, x, clock=clock.__getitem__)
    assert ids[9] == 1 and ids[-1] not in (None, 1)


def test_predict_only_between_detector_runs_keeps_ids_and_follows_motion():
    tracker = ByteTrack()
    pa = lambda f: box(100 + 6 * f)  # noqa: E731
    pb = lambda f: box(600 - 4 * f, cy=250)  # noqa: E731
    ids_seen = set()
    for f in range(60):
        if f % 3 == 0:  # detect_every: 3
            out = tracker.update(dets((pa(f), 0.9), (pb(f), 0.8)), f / FPS)
            truth = np.stack([pa(f), pb(f)])
        else:
            out = tracker.predict_only(f / FPS)
            truth = np.stack([pa(f), pb(f)])
            if f > 12:  # velocity learned
                assert np.all(box_iou(out.xyxy, truth).max(axis=1) > 0.8), f"prediction drifted at {f}"
        if f >= 3:
            assert len(out) == 2
            ids_seen.update(out.track_id.tolist())
            # rows are ordered by id; the person on the left of the truth keeps id 1
            best = box_iou(out.xyxy, truth).argmax(axis=1)
            np.testing.assert_array_equal(out.track_id[best.argsort()], [1, 2])
    assert ids_seen == {1, 2}


def test_predict_only_does_not_change_the_tracker():
    def run(with_predictions: bool) -> list[Tracks]:
        tracker, outs = ByteTrack(), []
        for f in range(40):
            hidden = 10 <= f < 20
            outs.append(tracker.update(dets() if hidden else dets((box(100 + 5 * f), 0.9)), f / FPS))
            if with_predictions:
                for k in range(1, 4):
                    tracker.predict_only((f + k / 4) / FPS)
        return outs

    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a.track_id, b.track_id)
        np.testing.assert_array_equal(a.xyxy, b.xyxy)


def test_predicting_unconfirmed_tracks_lets_a_new_track_learn_its_velocity():
    """Default: the unconfirmed track is predicted, so its first two boxes give it a velocity.

    With ``predict_unconfirmed=False`` (the reference) it is confirmed with exactly zero velocity.
    """

    def predicted_shift(predict_unconfirmed: bool) -> float:
        tracker = ByteTrack(predict_unconfirmed=predict_unconfirmed)
        tracker.update(dets(), 0.0)  # not the first update: new tracks need a second detection
        tracker.update(dets((box(100), 0.9)), 1 / FPS)
        out = tracker.update(dets((box(105), 0.9)), 2 / FPS)
        assert out.track_id.tolist() == [1]
        now, later = tracker.predict_only(2 / FPS), tracker.predict_only(12 / FPS)
        return float(later.xyxy[0, 0] - now.xyxy[0, 0])

    assert predicted_shift(True) > 5.0, "moves on in the direction of motion"
    assert predicted_shift(False) == 0.0


def test_empty_all_low_and_degenerate_detections():
    tracker = ByteTrack()
    assert len(tracker.update(dets(), 0.0)) == 0
    assert len(tracker.predict_only(0.01)) == 0
    low = dets((box(100), 0.2), (box(300), 0.05))
    for f in range(1, 5):
        assert len(tracker.update(low, f / FPS)) == 0, "low detections never start tracks"
    assert tracker.num_tracked == 0
    bad = Detections(
        np.array([[10, 10, 10, 50], [10, 10, 40, 10], [np.nan, 0, 5, 5], [20, 20, 10, 10]], np.float32),
        np.array([0.9, 0.9, 0.9, 0.9], np.float32),
    )
    for f in range(5, 10):
        mixed = Detections(np.vstack([bad.xyxy, box(200)[None]]), np.r_[bad.score, np.float32(0.9)])
        out = tracker.update(mixed, f / FPS)
        assert np.isfinite(out.xyxy).all() and np.isfinite(out.score).all()
    assert out.track_id.tolist() == [1] and out.xyxy.tolist() == [box(200).tolist()]
    assert np.isfinite(tracker.predict_only(12 / FPS).xyxy).all()


def test_first_update_confirms_at_once_later_tracks_need_a_second_detection():
    tracker = ByteTrack()
    assert tracker.update(dets((box(100), 0.9)), 0.0).track_id.tolist() == [1]
    assert tracker.update(dets((box(100), 0.9), (box(400), 0.9)), 1 / FPS).track_id.tolist() == [1]
    assert tracker.update(dets((box(100), 0.9), (box(400), 0.9)), 2 / FPS).track_id.tolist() == [1, 2]
    strict = ByteTrack(minimum_consecutive_frames=3)
    seen = [strict.update(dets((box(100), 0.9)), f / FPS).track_id.tolist() for f in range(4)]
    assert seen == [[], [], [1], [1]]


def test_new_track_threshold_gates_track_birth():
    tracker = ByteTrack(new_track_threshold=0.5)
    for f in range(3):
        assert len(tracker.update(dets((box(100), 0.4)), f / FPS)) == 0
    assert tracker.num_tracked == 0


def test_ids_are_per_instance_and_reset_restarts_them():
    a, b = ByteTrack(), ByteTrack()
    for f in range(3):
        out_a = a.update(dets((box(100), 0.9), (box(300), 0.9)), f / FPS)
        out_b = b.update(dets((box(500), 0.9)), f / FPS)
    assert out_a.track_id.tolist() == [1, 2] and out_b.track_id.tolist() == [1]
    a.reset()
    assert a.num_tracked == a.num_lost == 0
    assert a.update(dets((box(700), 0.9)), 0.0).track_id.tolist() == [1], "reset also allows t to restart"


def test_time_must_not_go_backwards():
    tracker = ByteTrack()
    tracker.update(dets((box(100), 0.9)), 1.0)
    with pytest.raises(ValueError, match="back in time"):
        tracker.update(dets(), 0.5)
    with pytest.raises(ValueError, match="back in time"):
        tracker.predict_only(0.5)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(dets(), float("nan"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("track_activation_threshold", 1.5),
        ("low_score_threshold", -0.1),
        ("new_track_threshold", float("nan")),
        ("minimum_matching_threshold", 1.0),
        ("second_match_threshold", -0.5),
        ("unconfirmed_match_threshold", 2.0),
        ("duplicate_iou_threshold", 0.0),
        ("frame_rate", 0.0),
        ("lost_track_buffer", -1),
        ("minimum_consecutive_frames", 0),
        ("minimum_consecutive_frames", 1.5),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        ByteTrack(**{name: value})


def test_memory_stays_bounded_over_10000_frames():
    """People come and go for 10,000 frames; removed tracks must not pile up anywhere."""
    rng = np.random.default_rng(7)
    tracker = ByteTrack(lost_track_buffer=15)
    people: list[list[float]] = []  # [x, y, vx, frames_left]
    peak = max_id = 0
    for f in range(10_000):
        if len(people) < 3 and rng.random() < 0.1:
            lifetime = rng.integers(20, 80)
            people.append([rng.uniform(100, 1100), rng.uniform(100, 600), rng.uniform(-5, 5), lifetime])
        items = []
        for p in people:
            p[0] += p[2]
            p[3] -= 1
            if rng.random() > 0.1:  # 10 % missed detections
                items.append((box(p[0], p[1]), float(rng.uniform(0.15, 0.95))))
        people = [p for p in people if p[3] > 0]
        out = tracker.update(dets(*items), f / FPS)
        max_id = max(max_id, int(out.track_id.max(initial=0)))
        peak = max(peak, tracker.num_tracked + tracker.num_lost)
        if f % 1000 == 0:
            assert len(tracker.__dict__) < 30  # no per-frame attributes growing
    assert max_id > 200, "the run must create and retire many tracks"
    assert peak <= 12, f"live + lost tracks peaked at {peak}"
    for k in range(1, 20):  # everybody leaves: within the buffer every lost track is forgotten
        tracker.update(dets(), (10_000 + k) / FPS)
    assert tracker.num_tracked == tracker.num_lost == 0


def test_lost_predicted_reports_recently_lost_tracks_at_predicted_boxes_without_changing_state():
    tracker = ByteTrack(frame_rate=30.0)
    box = np.array([[100, 100, 140, 200]], np.float32)
    for i in range(10):  # moving right at 2 px a frame
        tracker.update(Detections(box + [2 * i, 0, 2 * i, 0], np.array([0.9], np.float32)), i / 30)
    tracker.update(Detections.empty(), 10 / 30)  # missed: the track is lost now
    assert tracker.num_lost == 1 and len(tracker.predict_only(10 / 30)) == 0
    coasting = tracker.lost_predicted(12 / 30, max_age_s=0.2)
    assert coasting.track_id.tolist() == [1]
    np.testing.assert_allclose(coasting.xyxy[0], box[0] + [2 * 12, 0, 2 * 12, 0], atol=1.5)
    assert len(tracker.lost_predicted(12 / 30, max_age_s=0.05)) == 0  # last seen 3 frames ago
    back = tracker.update(Detections(box + [24, 0, 24, 0], np.array([0.9], np.float32)), 12 / 30)
    assert back.track_id.tolist() == [1]  # reading the lost track changed nothing
