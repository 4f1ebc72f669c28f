"""BoxKalmanFilter: real-time steps, exact reduction to the reference per-frame filter, vectorisation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from posestream.tracking.kalman import BoxKalmanFilter, cxcyah_to_xyxy, xyxy_to_cxcyah

FPS = 30.0
# Our velocities are per second, the reference's per frame: x_ours = S x_ref.
S = np.diag([1, 1, 1, 1, FPS, FPS, FPS, FPS])


def _reference_filter():
    """supervision's copy of ByteTrack's per-frame filter (test-only dependency)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = pytest.importorskip("supervision.tracker.byte_tracker.kalman_filter")
    return module.KalmanFilter()


def test_one_frame_step_is_the_reference_per_frame_filter():
    rng = np.random.default_rng(0)
    ref, ours = _reference_filter(), BoxKalmanFilter(frame_rate=FPS)
    z = np.array([320.0, 240.0, 0.45, 160.0])
    m, c = ref.initiate(z)
    mean, cov = ours.initiate(z[None])
    np.testing.assert_allclose(mean[0], S @ m)
    np.testing.assert_allclose(cov[0], S @ c @ S)
    for _ in range(20):
        m, c = ref.predict(m, c)
        mean, cov = ours.predict(mean, cov, 1 / FPS)
        z = z + [4.0, -1.0, 0.0, 0.5] + rng.normal(0, [2.0, 2.0, 0.01, 2.0])
        m, c = ref.update(m, c, z)
        mean, cov = ours.update(mean, cov, z[None])
        np.testing.assert_allclose(mean[0], S @ m, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cov[0], S @ c @ S, rtol=1e-9, atol=1e-9)


def test_velocity_is_per_second_and_position_moves_by_v_dt():
    kf = BoxKalmanFilter(frame_rate=FPS)
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 0.5, 100.0]]))
    mean[0, 4:] = [60.0, -30.0, 0.0, 10.0]  # px / s
    new_mean, _ = kf.predict(mean, cov, 0.5)
    np.testing.assert_allclose(new_mean[0, :4], [130.0, 35.0, 0.5, 105.0])
    np.testing.assert_allclose(new_mean[0, 4:], mean[0, 4:])


def test_process_noise_adds_up_over_time():
    """Q(a + b) = Q(a) + Q(b): with zero covariance and velocity, two steps equal one long step."""
    kf = BoxKalmanFilter(frame_rate=FPS)
    mean = np.array([[100.0, 50.0, 0.5, 100.0, 0, 0, 0, 0]])
    zero = np.zeros((1, 8, 8))
    _, q_long = kf.predict(mean, zero, 5 / FPS)
    _, q_one = kf.predict(mean, zero, 1 / FPS)
    np.testing.assert_allclose(np.diag(q_long[0]), 5 * np.diag(q_one[0]))


def test_vectorised_predict_and_update_match_row_by_row():
    rng = np.random.default_rng(1)
    kf = BoxKalmanFilter(frame_rate=25.0)
    z = np.c_[rng.uniform(0, 500, (6, 2)), rng.uniform(0.3, 0.6, 6), rng.uniform(50, 200, 6)]
    mean, cov = kf.initiate(z)
    mean[:, 4:] = rng.normal(0, 20, (6, 4))
    dt = rng.uniform(0, 0.3, 6)
    pm, pc = kf.predict(mean, cov, dt)
    um, uc = kf.update(pm, pc, z + rng.normal(0, 2, z.shape))
    for i in range(6):
        pm_i, pc_i = kf.predict(mean[i : i + 1], cov[i : i + 1], dt[i])
        np.testing.assert_allclose(pm_i[0], pm[i])
        np.testing.assert_allclose(pc_i[0], pc[i])
    assert np.all(np.linalg.eigvalsh(uc) > 0), "updated covariances must stay positive definite"
    assert np.all(np.diagonal(uc, axis1=1, axis2=2) <= np.diagonal(pc, axis1=1, axis2=2) + 1e-9)


def test_zero_dt_predict_is_identity():
    kf = BoxKalmanFilter()
    mean, cov = kf.initiate(np.array([[10.0, 20.0, 0.5, 40.0]]))
    mean[0, 4:] = 7.0
    m2, c2 = kf.predict(mean, cov, 0.0)
    np.testing.assert_array_equal(m2, mean)
    np.testing.assert_array_equal(c2, cov)


def test_box_conversions_round_trip():
    xyxy = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 1.0, 3.0]])
    np.testing.assert_allclose(xyxy_to_cxcyah(xyxy)[0], [30.0, 70.0, 0.4, 100.0])
    np.testing.assert_allclose(cxcyah_to_xyxy(xyxy_to_cxcyah(xyxy)), xyxy)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="frame_rate"):
        BoxKalmanFilter(frame_rate=0)
    kf = BoxKalmanFilter()
    mean, cov = kf.initiate(np.array([[10.0, 20.0, 0.5, 40.0]]))
    with pytest.raises(ValueError, match="dt"):
        kf.predict(mean, cov, -0.1)
    with pytest.raises(ValueError, match="measurement"):
        kf.update(mean, cov, np.zeros((2, 4)))
