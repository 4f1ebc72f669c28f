"""Constant-velocity Kalman smoother: against filterpy's KalmanFilter, jitter vs lag, score gating."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from posestream.filters.kalman import KalmanSmoother

FPS = 30.0


def test_matches_filterpy_kalman_filter_with_irregular_times_and_scores():
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.choice([1 / FPS, 2 / FPS, 3 / FPS], size=25))  # dropped frames
    z = 3.0 * t * FPS + rng.normal(0, 2, size=25)
    s = rng.uniform(0.4, 1.0, size=25)
    q, r0, v0 = 5e4, 4.0, 1e3
    ours = KalmanSmoother(process_var=q, r0=r0, init_velocity_var=v0)
    out = [ours(np.array([z[i]]), t[i], np.array([s[i]]))[0] for i in range(25)]

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.x = np.array([z[0], 0.0])
    kf.P = np.diag([r0 / s[0] ** 2, v0])
    kf.H = np.array([[1.0, 0.0]])
    ref = [z[0]]
    for i in range(1, 25):
        dt = t[i] - t[i - 1]
        kf.F = np.array([[1.0, dt], [0.0, 1.0]])
        kf.Q = Q_discrete_white_noise(dim=2, dt=dt, var=q)
        kf.predict()
        kf.update(z[i], R=r0 / s[i] ** 2)
        ref.append(kf.x[0])
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


def test_vectorised_elements_are_independent():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5, size=(15, 17, 2))
    s = rng.uniform(0.5, 1, size=(15, 17))
    t = np.arange(15) / FPS
    whole, single = KalmanSmoother(), KalmanSmoother()
    out = np.stack([whole(x[i], t[i], s[i]) for i in range(15)])
    ref = np.array([single(x[i, 5, 0:1], t[i], s[i, 5:6])[0] for i in range(15)])
    assert out.shape == (15, 17, 2)
    np.testing.assert_allclose(out[:, 5, 0], ref, rtol=0, atol=1e-9)
    assert not np.allclose(out, x)


def test_reduces_jitter_and_follows_step_with_defaults():
    rng = np.random.default_rng(0)
    t = np.arange(300) / FPS
    truth = 20.0 * np.sin(2 * np.pi * 0.25 * t)
    z = truth[:, None] + rng.normal(0, 2.0, size=(300, 32))
    f = KalmanSmoother()
    y = np.stack([f(z[i], t[i]) for i in range(300)])
    reduction = 1 - np.std(np.diff(y - truth[:, None], axis=0)) / np.std(np.diff(z - truth[:, None], axis=0))
    assert reduction >= 0.6, reduction

    steps = np.where(np.arange(60) >= 30, 50.0, 0.0)
    g = KalmanSmoother()
    ys = np.array([g(np.array([steps[i]]), t[i])[0] for i in range(60)])
    lag = int(np.flatnonzero(ys[30:] >= 45.0)[0])
    assert lag <= 3, lag
    assert ys[29] == 0.0
    assert abs(ys[-1] - 50.0) < 0.5  # settles on the step


def test_low_score_holds_state_and_resumes_across_the_gap():
    t = np.arange(12) / FPS
    x = np.linspace(0, 22, 12)[:, None] * np.ones((12, 3))
    score = np.ones((12, 3))
    score[4:8, 1] = 0.1
    x_bad = x.copy()
    x_bad[4:8, 1] = 500.0

    f = KalmanSmoother(score_threshold=0.3)
    out = np.stack([f(x_bad[i], t[i], score[i]) for i in range(12)])
    ref = KalmanSmoother()
    good = [i for i in range(12) if i not in range(4, 8)]
    ref_out = {i: ref(x[i, 1:2], t[i])[0] for i in good}

    np.testing.assert_array_equal(out[4:8, 1], np.full(4, out[3, 1]))  # held, not extrapolated, not pulled
    for i in good:
        assert out[i, 1] == pytest.approx(ref_out[i], abs=1e-9)
    np.testing.assert_allclose(out[:, 0], out[:, 2])


def test_lower_score_moves_estimate_less():
    moves = []
    for score in (1.0, 0.5):
        f = KalmanSmoother()
        for i in range(10):
            f(np.array([0.0]), i / FPS)
        moves.append(f(np.array([10.0]), 10 / FPS, np.array([score]))[0])
    assert 0 < moves[1] < moves[0] < 10


def test_non_increasing_timestamps_hold():
    f = KalmanSmoother()
    f(np.array([0.0]), 0.0)
    a = f(np.array([10.0]), 1 / FPS)[0]
    assert f(np.array([99.0]), 1 / FPS)[0] == a
    assert f(np.array([99.0]), 0.0)[0] == a


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"process_var": 0.0}, "process_var"), ({"r0": -1.0}, "r0"), ({"score_eps": 0.0}, "score_eps"),
])
def test_bad_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        KalmanSmoother(**kwargs)


def test_bad_shapes_raise():
    f = KalmanSmoother()
    with pytest.raises(ValueError, match="score"):
        f(np.zeros((17, 2)), 0.0, np.ones(2))
    f(np.zeros((17, 2)), 0.0, np.ones(17))
    with pytest.raises(ValueError, match="reset"):
        f(np.zeros((16, 2)), 0.1)
