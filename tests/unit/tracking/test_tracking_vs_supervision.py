"""Differential test: our ByteTrack against ``supervision==0.30.9``'s ``sv.ByteTrack``.

At a constant ``dt = 1 / frame_rate`` the two must agree exactly: the same detections reported in
every frame, with ids equal up to a relabelling (one consistent bijection over the sequence).

Parameter mapping (read from supervision/tracker/byte_tracker/core.py and single_object_track.py):

=================================  ====================================  =========================
supervision                        ours                                  note
=================================  ====================================  =========================
track_activation_threshold=0.25    track_activation_threshold=0.25       high: score >= it
(hidden) ``scores > 0.1``          low_score_threshold=0.1               low: 0.1 < score < 0.25
(hidden) det_thresh = act + 0.1    new_track_threshold=0.35              births
minimum_matching_threshold=0.8     minimum_matching_threshold=0.8        1st association, fused
(hidden) thresh=0.5                second_match_threshold=0.5            2nd association, IoU
(hidden) thresh=0.7                unconfirmed_match_threshold=0.7       unconfirmed, fused
(hidden) distance < 0.05           duplicate_iou_threshold=0.95
lost_track_buffer=B, frame_rate=30 lost_track_buffer=B + 1, frame_rate=30  see difference 3
minimum_consecutive_frames=k       minimum_consecutive_frames=k
(behaviour) no predict unconfirmed predict_unconfirmed=False             see difference 7
=================================  ====================================  =========================

Known differences (full list in the module docstring of posestream.tracking.bytetrack):
supervision steps one frame per call (we use timestamps; equal at constant dt); its buffer is
``int(frame_rate / 30 * B)`` frames (equal at 30 fps); a track it removes lingers one more frame
in its lost list, so it tolerates B + 1 missed frames, hence ours = B + 1 (this holds for B >= 1;
at B = 0 supervision still tolerates 2); it reports detections re-matched to its Kalman boxes
(IoU >= 0.5) where we report the associated detection; it does not predict unconfirmed tracks.
``sv.Detections`` carries no timestamp, so supervision cannot be tested on dropped frames at all.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from posestream.tracking.bytetrack import ByteTrack
from posestream.types import Detections

FPS = 30.0

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sv = pytest.importorskip("supervision")


def reference(buffer: int, min_frames: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sv.ByteTrack is deprecated in 0.28+, still present in 0.30.9
        return sv.ByteTrack(
            track_activation_threshold=0.25,
            lost_track_buffer=buffer,
            minimum_matching_threshold=0.8,
            frame_rate=30,
            minimum_consecutive_frames=min_frames,
        )


def ours(buffer: int, min_frames: int) -> ByteTrack:
    return ByteTrack(
        track_activation_threshold=0.25,
        lost_track_buffer=buffer + 1,
        minimum_matching_threshold=0.8,
        frame_rate=FPS,
        minimum_consecutive_frames=min_frames,
        low_score_threshold=0.1,
        new_track_threshold=0.35,
        second_match_threshold=0.5,
        unconfirmed_match_threshold=0.7,
        duplicate_iou_threshold=0.95,
        predict_unconfirmed=False,
    )


def random_sequence(seed: int, n_frames: int = 250, n_people: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """People walking smoothly with box noise, runs of low scores, runs of misses, false positives.

    Returns per frame (xyxy (N, 4) float32, score (N,) float32), rows shuffled.
    """
    rng = np.random.default_rng(seed)
    frames: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(n_frames)]
    for _ in range(n_people):
        start = int(rng.integers(0, n_frames // 2))
        end = int(rng.integers(start + 20, n_frames + 20))
        pos, vel = rng.uniform([50, 50], [1200, 600]), rng.uniform(-6, 6, 2)
        half = np.array([rng.uniform(20, 45), rng.uniform(60, 125)])
        low_left = miss_left = 0
        for f in range(start, min(end, n_frames)):
            vel += rng.normal(0, 0.15, 2)
            pos += vel
            if miss_left == low_left == 0:
                r = rng.random()
                if r < 0.02:
                    miss_left = int(rng.integers(1, 6))
                elif r < 0.05:
                    low_left = int(rng.integers(1, 8))
            if miss_left:
                miss_left -= 1
                continue
            score = rng.uniform(0.12, 0.24) if low_left else rng.uniform(0.28, 0.95)
            low_left = max(low_left - 1, 0)
            frames[f].append((np.r_[pos - half, pos + half] + rng.normal(0, 3, 4), score))
    for f in range(n_frames):
        if rng.random() < 0.05:  # a false positive, sometimes confident enough to start a track
            c = rng.uniform([50, 50], [1200, 600])
            frames[f].append((np.r_[c - 30, c + 30], rng.uniform(0.3, 0.6)))
    out = []
    for items in frames:
        perm = rng.permutation(len(items))
        xyxy = np.array([items[i][0] for i in perm], np.float32).reshape(-1, 4)
        out.append((xyxy, np.array([items[i][1] for i in perm], np.float32)))
    return out


def run_both(sequence, buffer: int, min_frames: int):
    """Feed both trackers frame by frame; yield, per frame, dicts ``{box tuple: track id}``.

    ``ours``: our reported tracks. ``core``: supervision's active tracks after the frame (its
    ``tracked_tracks`` that are activated), each located by the detection it was associated with
    (``STrack.score`` is that detection's score; scores are continuous, so unique).
    ``public``: what ``update_with_detections`` returned (detections re-matched to its Kalman boxes).
    """
    ref, mine = reference(buffer, min_frames), ours(buffer, min_frames)
    for f, (xyxy, score) in enumerate(sequence):
        assert len(np.unique(score)) == len(score)
        public = ref.update_with_detections(sv.Detections(xyxy=xyxy.copy(), confidence=score.copy()))
        got = mine.update(Detections(xyxy, score), f / FPS)
        core = {}
        for track in ref.tracked_tracks:
            if track.is_activated:
                (row,) = np.nonzero(score == track.score)[0]
                core[tuple(xyxy[row].tolist())] = int(track.external_track_id)
        yield (
            {tuple(b): int(i) for b, i in zip(got.xyxy.tolist(), got.track_id)},
            core,
            {tuple(b): int(i) for b, i in zip(public.xyxy.tolist(), public.tracker_id)},
            {tuple(b): float(s) for b, s in zip(got.xyxy.tolist(), got.score)},
        )


class Relabelling:
    """A consistent bijection between our ids and theirs, built up over a sequence."""

    def __init__(self) -> None:
        self.ours_to_theirs: dict[int, int] = {}
        self.theirs_to_ours: dict[int, int] = {}

    def check(self, frame: int, mine: dict, theirs: dict) -> None:
        assert mine.keys() == theirs.keys(), (
            f"frame {frame}: active boxes differ: ours only {mine.keys() - theirs.keys()}, "
            f"supervision only {theirs.keys() - mine.keys()}"
        )
        for box, our_id in mine.items():
            their_id = theirs[box]
            assert self.ours_to_theirs.setdefault(our_id, their_id) == their_id, f"frame {frame}: {our_id}"
            assert self.theirs_to_ours.setdefault(their_id, our_id) == our_id, f"frame {frame}: {their_id}"


@pytest.mark.parametrize("min_frames", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_supervision_up_to_relabelling(seed, min_frames):
    relabel, public_relabel = Relabelling(), Relabelling()
    low_reports = refound = 0
    last_seen: dict[int, int] = {}
    for f, (mine, core, public, scores) in enumerate(run_both(random_sequence(seed), 30, min_frames)):
        relabel.check(f, mine, core)  # the association itself
        public_relabel.check(f, mine, public)  # what sv.ByteTrack returns (see the test below)
        for box, our_id in mine.items():
            low_reports += scores[box] < 0.25
            refound += last_seen.get(our_id, f - 1) < f - 1
            last_seen[our_id] = f
    # the sequence must exercise what it claims to compare
    assert len(relabel.ours_to_theirs) >= 5, "several people"
    assert low_reports > 0, "second association (low-score detections kept tracks alive)"
    assert refound > 0, "lost tracks re-found after misses"


def test_supervision_output_rematch_is_the_one_known_output_difference():
    """Difference 5 seen in the wild: at frame 55 of this sequence supervision's tracker associates
    a track with one detection but its ``update_with_detections`` returns an overlapping other one
    (best IoU with the Kalman box). Our output and supervision's tracker core still agree."""
    relabel = Relabelling()
    differs = []
    for f, (mine, core, public, _) in enumerate(run_both(random_sequence(10), 30, 3)):
        relabel.check(f, mine, core)
        if public.keys() != core.keys():
            differs.append(f)
    assert differs == [55]


@pytest.mark.parametrize("buffer", [1, 4, 10])
def test_lost_buffer_boundary_matches_with_the_plus_one_mapping(buffer):
    """supervision tolerates B + 1 missed frames; ours with B + 1 does too, and one more loses both."""
    for hidden, keeps in ((buffer + 1, True), (buffer + 2, False)):
        sequence = []
        for f in range(10 + hidden + 4):
            cx = 100.0 + 3 * f
            visible = not (10 <= f < 10 + hidden)
            xyxy = np.array([[cx - 25, 200, cx + 25, 350]] if visible else [], np.float32).reshape(-1, 4)
            sequence.append((xyxy, np.full(len(xyxy), 0.9, np.float32)))
        relabel = Relabelling()
        for f, (mine, core, public, _) in enumerate(run_both(sequence, buffer=buffer, min_frames=1)):
            relabel.check(f, mine, core)
            relabel.check(f, mine, public)
        assert (list(mine.values()) == [1]) is keeps
        assert (list(public.values()) == [1]) is keeps
