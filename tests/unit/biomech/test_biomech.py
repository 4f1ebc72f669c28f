"""Biomechanics outputs: TRC/MOT against strict readers, scaling, gap filling, derivatives, report."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from opensim_readers import assert_times_exact, read_mot, read_trc
from synthetic_motion import KP, SEGMENTS, curl_frame, observe, rep_profile, squat_frame, write_keypoints_jsonl

from posestream import cli
from posestream.analytics.angles import ANGLE_NAMES, smooth_zero_phase, time_derivative
from posestream.biomech.gaps import fill_gaps
from posestream.biomech.opensim import write_mot, write_trc
from posestream.biomech.report import write_biomech_report
from posestream.biomech.scaling import (
    ANKLE_HEIGHT_FRACTION, HEAD_FACTOR, parse_scale_points, scale_from_height, scale_from_points, to_world,
)  # fmt: skip
from posestream.errors import InputError
from posestream.types import COCO_KEYPOINTS


def test_trc_and_mot_parse_strictly_with_exact_240fps_times(tmp_path):
    t = 50
    pts = np.arange(7, 7 + t) / 240.0  # starts at source frame 7; 1/240 has no short decimal
    xyz = np.random.default_rng(0).normal(size=(t, 3, 3))
    xyz[4, 1] = np.nan
    write_trc(tmp_path / "a.trc", ("nose", "left_knee", "right_knee"), np.arange(7, 7 + t), pts, xyz, "m")
    trc = read_trc(tmp_path / "a.trc")
    assert trc.file_name == "a.trc" and trc.markers == ["nose", "left_knee", "right_knee"]
    assert trc.header["Units"] == "m" and int(trc.header["NumFrames"]) == t and float(trc.header["DataRate"]) == 240
    assert trc.header["OrigDataStartFrame"] == "8" and list(trc.frame) == list(range(8, 8 + t))
    assert_times_exact(trc.time, pts)
    np.testing.assert_allclose(trc.xyz, xyz, rtol=1e-6)  # NaN where NaN

    angles = {"left_knee": np.linspace(180, 90, t), "trunk_lean": np.full(t, np.nan)}
    write_mot(tmp_path / "a.mot", pts, angles, name="track_1_angles")
    mot = read_mot(tmp_path / "a.mot")
    assert mot.name == "track_1_angles" and mot.columns == ["left_knee", "trunk_lean"]
    assert mot.header["inDegrees"] == "yes" and int(mot.header["nRows"]) == t
    assert_times_exact(mot.time, pts)
    np.testing.assert_allclose(mot.data[:, 0], angles["left_knee"], rtol=1e-6)
    assert np.isnan(mot.data[:, 1]).all()


def test_writers_refuse_bad_shapes_and_keep_an_old_file_on_failure(tmp_path):
    path = tmp_path / "a.mot"
    path.write_text("precious\n")
    with pytest.raises(ValueError, match="column 'x'"):
        write_mot(path, np.arange(3.0), {"x": np.zeros(4)})
    assert path.read_text() == "precious\n"
    with pytest.raises(ValueError, match="units"):
        write_trc(tmp_path / "a.trc", ("a",), np.arange(2), np.arange(2.0), np.zeros((2, 1, 3)), "cm")


def standing_clip(n=60, seed=0):
    frames = np.stack([curl_frame(170.0, 170.0, 5.0, 0.0) for _ in range(n)])
    return observe(frames, seed=seed, noise_px=0.5)


def test_height_scaling_uses_median_segments_and_resists_outliers():
    kp, sc = standing_clip()
    kp[::10, KP["left_knee"]] += (80, -60)  # a misplaced knee in 6 of 60 frames
    neck = np.linalg.norm((kp[0, KP["left_shoulder"]] + kp[0, KP["right_shoulder"]]) / 2 - kp[0, KP["nose"]])
    true_px = SEGMENTS["shank"] + SEGMENTS["thigh"] + SEGMENTS["trunk"] + HEAD_FACTOR * neck
    m_per_px, seg = scale_from_height(kp, sc, 1.80)
    assert seg["ankle_to_head"] == pytest.approx(true_px, rel=0.01)
    assert m_per_px == pytest.approx((1 - ANKLE_HEIGHT_FRACTION) * 1.80 / true_px, rel=0.01)
    sc[:, KP["left_ankle"]] = sc[:, KP["right_ankle"]] = 0.1  # never see the shanks
    with pytest.raises(InputError, match="shank"):
        scale_from_height(kp, sc, 1.80)
    with pytest.raises(InputError, match="between 0.3 and 3"):
        scale_from_height(kp, np.ones_like(sc), 180.0)  # centimetres by mistake


def test_two_point_calibration_and_world_axes():
    assert scale_from_points((0, 0), (300, 400), 2.5) == pytest.approx(0.005)
    assert parse_scale_points("0,0,300,400,2.5") == ((0, 0), (300, 400), 2.5)
    for bad in ("1,2,3", "a,b,c,d,e", "0,0,0,0,nan"):
        with pytest.raises(InputError, match="X1,Y1,X2,Y2,METRES"):
            parse_scale_points(bad)
    with pytest.raises(InputError, match="must differ"):
        scale_from_points((5, 5), (5, 5), 1.0)
    np.testing.assert_allclose(to_world(np.array([[100.0, 50.0]]), 0.01), [[1.0, -0.5, 0.0]])  # Y up


def test_gap_filling_interpolates_in_time_flags_and_stops_at_max_gap():
    pts = np.array([0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12], float) / 30  # one dropped frame at 3/30
    v = np.array([np.nan, 1, 2, np.nan, np.nan, 6, 7, np.nan, np.nan, np.nan, np.nan, 12])
    filled, flag = fill_gaps(v, pts, max_gap=3)
    np.testing.assert_allclose(filled[[3, 4]], [4.0, 5.0])  # linear in pts (by index: 3.33, 4.67)
    assert flag.tolist() == [False, False, False, True, True] + [False] * 7
    assert np.isnan(filled[0]) and np.isnan(filled[7:11]).all()  # leading gap, and a 4-frame gap > 3
    both, flags2 = fill_gaps(np.stack([v, v], axis=1), pts, 4)
    assert flags2[7:11].all() and np.allclose(both[:, 0], both[:, 1], equal_nan=True)


@pytest.mark.parametrize("fps", [30.0, 240.0])
def test_filtered_derivatives_follow_the_true_motion_in_hz_not_frames(fps):
    # x = A sin(2 pi f t) with 1 px noise: the same 6 Hz filter at 30 and 240 fps gives v and a.
    t = np.arange(int(3 * fps)) / fps
    a_px, f = 60.0, 1.0
    x = a_px * np.sin(2 * np.pi * f * t) + np.random.default_rng(1).normal(0, 1.0, t.size)
    xs = smooth_zero_phase(x, t, 6.0)
    v = time_derivative(xs, t)
    acc = time_derivative(v, t)
    w = 2 * np.pi * f
    inner = slice(int(0.3 * fps), -int(0.3 * fps))  # away from the ends
    v_true, a_true = a_px * w * np.cos(w * t), -a_px * w * w * np.sin(w * t)

    def rms(err):
        return float(np.sqrt(np.mean(err[inner] ** 2)))

    # Measured (seeds 0-2): v 2.4-2.9% at 30 fps, 1.1% at 240; a 9-11% and 6-7%.
    assert rms(v - v_true) < 0.04 * a_px * w
    assert rms(acc - a_true) < 0.15 * a_px * w * w
    assert rms(time_derivative(x, t) - v_true) > 1.5 * rms(v - v_true)  # the filter matters (x40 at 240 fps)


def write_keypoints(path, pts, keypoints, scores, absent=()):
    write_keypoints_jsonl(path, pts, keypoints, scores, track_id=4, absent=absent)


def test_report_per_track_files_at_240fps(tmp_path):
    t, knee, _ = rep_profile([80, 85], top=172.0, fps=240.0, period_s=1.0, hold_s=0.25)
    kp, sc = observe(np.stack([squat_frame(k, k, 10.0) for k in knee]), seed=2)
    sc[100:103, KP["left_wrist"]] = 0.0  # a 3-frame keypoint gap: filled
    absent = set(range(300, 330))  # the person missing for 30 frames: not filled (> max_gap)
    write_keypoints(tmp_path / "kp.jsonl", t, kp, sc, absent=absent)
    summary = write_biomech_report(tmp_path / "kp.jsonl", tmp_path / "out", person_height_m=1.75, max_gap=10,
                                   cutoff_hz=6.0)  # fmt: skip
    assert summary["units"] == "m" and summary["scale_method"] == "person_height"
    out = tmp_path / "out"
    trc, mot = read_trc(out / "track_4.trc"), read_mot(out / "track_4.mot")
    assert trc.header["Units"] == "m" and trc.markers == list(COCO_KEYPOINTS)
    assert float(trc.header["DataRate"]) == pytest.approx(240.0)
    assert_times_exact(trc.time, t)  # every frame of the span, at its exact pts
    assert_times_exact(mot.time, t)
    assert mot.columns == list(ANGLE_NAMES)
    assert np.isnan(trc.xyz[310]).all() and np.isfinite(trc.xyz[101, KP["left_wrist"]]).all()
    # Metres: the standing person's ankle-to-nose height is about 1.6 m, with Y up.
    standing = trc.xyz[0]
    assert 1.3 < standing[KP["nose"], 1] - standing[KP["left_ankle"], 1] < 1.75
    # The knee angle in the MOT follows the profile (filtered at 6 Hz: the 1 s dips are kept).
    lk = mot.data[:, mot.columns.index("left_knee")]
    assert abs(np.nanmin(lk[:240]) - 80) < 4 and abs(lk[20] - 172) < 3
    with open(out / "track_4.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["pts"]) for r in rows] == [float(x) for x in t]
    assert [r["left_wrist_filled"] for r in rows[99:104]] == ["0", "1", "1", "1", "0"]
    assert rows[310]["left_wrist_x_m"] == "" and rows[200]["left_knee_deg_s"] != ""
    assert float(rows[50]["left_hip_speed_m_s"]) >= 0
    assert (out / "track_4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "biomech.json").read_text())["tracks"]["4"]["filled_samples"] == 3


def test_pixels_without_scale_and_cli_errors(tmp_path, capsys):
    t, knee, _ = rep_profile([90], top=170.0)
    kp, sc = observe(np.stack([squat_frame(k, k, 0.0) for k in knee]))
    write_keypoints(tmp_path / "kp.jsonl", t, kp, sc)
    code = cli.main(["biomech", str(tmp_path / "kp.jsonl"), "--out-dir", str(tmp_path / "px")])
    assert code == 0 and read_trc(tmp_path / "px" / "track_4.trc").header["Units"] == "px"
    ankle = read_trc(tmp_path / "px" / "track_4.trc").xyz[0, KP["left_ankle"]]
    assert ankle[1] == pytest.approx(-kp[0, KP["left_ankle"], 1], abs=2) and ankle[2] == 0
    for args, message in [
        (["--scale-points", "1,2,3"], "X1,Y1,X2,Y2,METRES"),
        (["--person-height", "1.7", "--scale-points", "0,0,1,1,1"], "not both"),
        (["--zero-phase-hz", "20"], "below half the frame rate"),
        (["--max-gap", "-1"], "--max-gap"),
    ]:
        code = cli.main(["biomech", str(tmp_path / "kp.jsonl"), "--out-dir", str(tmp_path / "bad"), *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not math.isnan(float(json.loads((tmp_path / "px" / "biomech.json").read_text())["m_per_px"]))


def test_keypoint_reader_takes_tracking_only_files_and_biomech_says_there_is_nothing(tmp_path):
    from posestream.io.keypoints import read_keypoint_frames

    path = tmp_path / "boxes.jsonl"
    path.write_text("".join(json.dumps({"frame": i, "pts": i / 30, "people": [
        {"track_id": 2, "box_xyxy": [0, 0, 5, 5], "keypoints": []}]}) + "\n" for i in range(3)))  # fmt: skip
    frames = read_keypoint_frames(path)
    assert [f.poses.keypoints.shape for f in frames] == [(1, 0, 2)] * 3 and frames[0].poses.track_id[0] == 2
    with pytest.raises(InputError, match="boxes only"):
        write_biomech_report(path, tmp_path / "bio")
