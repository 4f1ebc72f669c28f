"""Synthetic people doing exercises: COCO-17 keypoints built from chosen joint angles.

Each generator poses a stick figure, seen from the side and facing +x, by walking segment by
segment from an anchor that stays put (ankles for squats, lunges and curls; wrists for push-ups),
so the interior angles at the joints are exactly the ones asked for (before noise). Directions are
degrees from the image's *downward* vertical, positive toward +x; ``step(p, length, phi)`` walks
from p. The rep profile is a raised cosine from the start angle down to each rep's bottom and
back, with a hold at the start position before, between and after reps.

Importable from any test: pytest puts ``tests/`` on ``sys.path`` (rootdir conftest, prepend mode).
"""

from __future__ import annotations

import numpy as np

from posestream.types import COCO_KEYPOINTS

KP = {name: i for i, name in enumerate(COCO_KEYPOINTS)}
SEGMENTS = {"shank": 90.0, "thigh": 95.0, "trunk": 120.0, "upper_arm": 62.0, "forearm": 55.0, "head": 42.0}


def step(p: np.ndarray, length: float, phi_deg: float) -> np.ndarray:
    phi = np.radians(phi_deg)
    return p + length * np.array([np.sin(phi), np.cos(phi)])


def rep_profile(bottoms: list[float], *, top: float, fps: float = 30.0, period_s: float = 2.0,
                hold_s: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """pts (T,), angle (T,), rep index (T,) (-1 while holding): one raised-cosine dip per bottom."""
    angles, reps = [], []
    hold = int(round(hold_s * fps))
    n = int(round(period_s * fps))
    for r, bottom in enumerate(bottoms):
        angles += [top] * hold
        reps += [-1] * hold
        phase = np.arange(n) / n
        angles += list(top - (top - bottom) * (1 - np.cos(2 * np.pi * phase)) / 2)
        reps += [r] * n
    angles += [top] * hold
    reps += [-1] * hold
    t = np.arange(len(angles)) / fps
    return t, np.asarray(angles, np.float64), np.asarray(reps)


def depth(angle: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """0 at the start angle, 1 at ``bottom`` (clipped): to move other joints along with the drive."""
    return np.clip((top - angle) / (top - bottom), 0.0, 1.0)


def _head(kp: np.ndarray, shoulder_mid: np.ndarray, trunk_phi: float) -> None:
    nose = step(step(shoulder_mid, SEGMENTS["head"], trunk_phi), 12.0, 90.0)  # up the trunk line, then forward
    kp[KP["nose"]] = nose
    kp[KP["left_eye"]], kp[KP["right_eye"]] = nose + (-5, -5), nose + (-3, -6)
    kp[KP["left_ear"]], kp[KP["right_ear"]] = nose + (-20, -2), nose + (-18, -3)


def _legs_up_from_ankles(kp, ankles, knees_deg, shank_lean) -> tuple[np.ndarray, np.ndarray]:
    """Ankles fixed; each shank leans forward, each thigh turns by (180 - knee angle). Returns hips."""
    hips = []
    for side, ankle, knee_deg, lean in zip(("left", "right"), ankles, knees_deg, shank_lean):
        shank_phi = -lean  # knee -> ankle direction: the ankle lies down and behind the knee
        thigh_phi = shank_phi + (180.0 - knee_deg)  # hip -> knee direction
        knee = step(ankle, -SEGMENTS["shank"], shank_phi)
        hip = step(knee, -SEGMENTS["thigh"], thigh_phi)
        kp[KP[f"{side}_ankle"]], kp[KP[f"{side}_knee"]], kp[KP[f"{side}_hip"]] = ankle, knee, hip
        hips.append(hip)
    return hips[0], hips[1]


def _arms(kp, upper_phi, elbows_deg, forward: float = 1.0) -> None:
    """From the shoulders: upper arm at ``upper_phi``; the forearm turns forward by (180 - elbow)."""
    for side, phi, elbow_deg in zip(("left", "right"), upper_phi, elbows_deg):
        shoulder = kp[KP[f"{side}_shoulder"]]
        elbow = step(shoulder, SEGMENTS["upper_arm"], phi)
        wrist = step(elbow, SEGMENTS["forearm"], phi + forward * (180.0 - elbow_deg))
        kp[KP[f"{side}_elbow"]], kp[KP[f"{side}_wrist"]] = elbow, wrist


def squat_frame(knee_l: float, knee_r: float, lean: float, origin=(320.0, 420.0)) -> np.ndarray:
    """(17, 2): ankles at ``origin``; trunk lean (deg from vertical, + = forward) as given."""
    kp = np.zeros((17, 2))
    ankles = [np.array(origin), np.array(origin) + (6.0, 0.0)]
    hips = _legs_up_from_ankles(kp, ankles, (knee_l, knee_r), [0.4 * (180 - k) for k in (knee_l, knee_r)])
    trunk_phi = 180.0 - lean
    for side, hip in zip(("left", "right"), hips):
        kp[KP[f"{side}_shoulder"]] = step(hip, SEGMENTS["trunk"], trunk_phi)
    _arms(kp, (80.0, 80.0), (175.0, 175.0))  # arms held forward for balance
    _head(kp, (kp[KP["left_shoulder"]] + kp[KP["right_shoulder"]]) / 2, trunk_phi)
    return kp


def lunge_frame(front_knee: float, back_knee: float, lean: float, origin=(360.0, 420.0)) -> np.ndarray:
    """Right leg in front (ankle at ``origin``), left leg behind, hanging from the right hip."""
    kp = np.zeros((17, 2))
    right_ankle = np.array(origin)
    shank_phi = -0.35 * (180 - front_knee)
    thigh_phi = shank_phi + (180.0 - front_knee)
    knee = step(right_ankle, -SEGMENTS["shank"], shank_phi)
    hip_r = step(knee, -SEGMENTS["thigh"], thigh_phi)
    kp[KP["right_ankle"]], kp[KP["right_knee"]], kp[KP["right_hip"]] = right_ankle, knee, hip_r
    hip_l = hip_r + (-6.0, 0.0)
    back_thigh = -0.45 * (180 - back_knee)  # down and behind
    knee_l = step(hip_l, SEGMENTS["thigh"], back_thigh)
    ankle_l = step(knee_l, SEGMENTS["shank"], back_thigh - (180.0 - back_knee))
    kp[KP["left_hip"]], kp[KP["left_knee"]], kp[KP["left_ankle"]] = hip_l, knee_l, ankle_l
    trunk_phi = 180.0 - lean
    kp[KP["left_shoulder"]] = step(hip_l, SEGMENTS["trunk"], trunk_phi)
    kp[KP["right_shoulder"]] = step(hip_r, SEGMENTS["trunk"], trunk_phi)
    _arms(kp, (5.0, 5.0), (170.0, 170.0))
    _head(kp, (kp[KP["left_shoulder"]] + kp[KP["right_shoulder"]]) / 2, trunk_phi)
    return kp


def curl_frame(elbow_l: float, elbow_r: float, shoulder_flex: float, lean: float,
               origin=(320.0, 430.0)) -> np.ndarray:  # fmt: skip
    """Standing straight; upper arms ``shoulder_flex`` deg forward of the trunk line; forearms curl up."""
    kp = np.zeros((17, 2))
    ankles = [np.array(origin), np.array(origin) + (6.0, 0.0)]
    hips = _legs_up_from_ankles(kp, ankles, (178.0, 178.0), (1.0, 1.0))
    trunk_phi = 180.0 - lean
    for side, hip in zip(("left", "right"), hips):
        kp[KP[f"{side}_shoulder"]] = step(hip, SEGMENTS["trunk"], trunk_phi)
    _arms(kp, (shoulder_flex - lean, shoulder_flex - lean), (elbow_l, elbow_r))
    _head(kp, (kp[KP["left_shoulder"]] + kp[KP["right_shoulder"]]) / 2, trunk_phi)
    return kp


def push_up_frame(elbow_l: float, elbow_r: float, hip_deg: float, origin=(420.0, 400.0)) -> np.ndarray:
    """Wrists on the floor at ``origin``, forearms vertical; the body line goes back from the shoulders."""
    kp = np.zeros((17, 2))
    for side, elbow_deg, dx in (("left", elbow_l, 0.0), ("right", elbow_r, 6.0)):
        wrist = np.array(origin) + (dx, 0.0)
        elbow = step(wrist, -SEGMENTS["forearm"], 0.0)  # straight above the wrist
        shoulder = step(elbow, SEGMENTS["upper_arm"], elbow_deg)  # interior angle at the elbow = elbow_deg
        body_phi = -75.0  # shoulder -> hip: backwards, slightly down
        hip = step(shoulder, SEGMENTS["trunk"], body_phi)
        leg_phi = body_phi - (180.0 - hip_deg)  # hip interior angle = hip_deg
        knee = step(hip, SEGMENTS["thigh"], leg_phi)
        ankle = step(knee, SEGMENTS["shank"], leg_phi)
        for joint, p in zip(("wrist", "elbow", "shoulder", "hip", "knee", "ankle"),
                            (wrist, elbow, shoulder, hip, knee, ankle)):  # fmt: skip
            kp[KP[f"{side}_{joint}"]] = p
    shoulder_mid = (kp[KP["left_shoulder"]] + kp[KP["right_shoulder"]]) / 2
    _head(kp, shoulder_mid, 105.0)
    return kp


def observe(keypoints: np.ndarray, *, noise_px: float = 1.5, seed: int = 0,
            score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Add pixel noise and scores around ``score``: returns (T, 17, 2) float32, (T, 17) float32."""
    rng = np.random.default_rng(seed)
    noisy = keypoints + rng.normal(0.0, noise_px, keypoints.shape)
    scores = np.clip(score + rng.normal(0.0, 0.03, keypoints.shape[:2]), 0.0, 1.0)
    return noisy.astype(np.float32), scores.astype(np.float32)


def write_keypoints_jsonl(path, pts, keypoints, scores, track_id: int = 1, absent=()) -> None:
    """A keypoints file in ``posestream run --out-json`` form: one line per frame of ``pts``, one person
    (``track_id``) per line except in the frame indices of ``absent``. Written with json directly."""
    import json

    with open(path, "w", encoding="utf-8") as fh:
        for i, t in enumerate(pts):
            people = []
            if i not in absent:
                kp = keypoints[i]
                box = [float(kp[:, 0].min() - 20), float(kp[:, 1].min() - 30), float(kp[:, 0].max() + 20),
                       float(kp[:, 1].max() + 10)]  # fmt: skip
                kps = np.concatenate([kp, scores[i][:, None]], axis=1)
                people.append({"track_id": track_id, "box_xyxy": box, "keypoints": kps.tolist()})
            fh.write(json.dumps({"frame": i, "pts": float(t), "people": people}) + "\n")


def squat_keypoints_for_clip(path, pts, bottoms, *, period_s: float, hold_s: float, scale: float = 1.0,
                             offset=(0.0, 0.0), seed: int = 0) -> np.ndarray:  # fmt: skip
    """A squatting person for each frame time in ``pts`` (a real clip's), written to ``path``.

    The rep profile is sampled at the clip's own times (its frame rate), the figure scaled by
    ``scale`` about the ankles and moved by ``offset`` pixels. Returns the knee angle per frame.
    """
    pts = np.asarray(pts, np.float64)
    fps = 1.0 / float(np.median(np.diff(pts)))
    t, knee, _ = rep_profile(list(bottoms), top=172.0, fps=fps, period_s=period_s, hold_s=hold_s)
    idx = np.minimum(np.searchsorted(t, pts - pts[0] - 1e-9), len(t) - 1)
    knee = knee[idx]
    origin = np.array([320.0, 420.0])
    frames = np.stack([squat_frame(k, k, 20.0 * depth(np.array([k]), 172.0, 80.0)[0], origin=tuple(origin))
                       for k in knee])  # fmt: skip
    frames = (frames - origin) * scale + origin + np.asarray(offset)
    kp, sc = observe(frames, seed=seed, noise_px=1.5 * scale)
    write_keypoints_jsonl(path, pts, kp, sc)
    return knee
