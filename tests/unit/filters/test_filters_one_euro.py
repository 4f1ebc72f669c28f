"""One-euro filter: the paper's equations by hand, jitter vs lag, score gating, timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.filters.one_euro import OneEuroFilter

FPS = 30.0


def test_matches_paper_equations_by_hand():
    # min_cutoff = 1 Hz, beta = 0.1, d_cutoff = 1 Hz; samples at irregular times (the last gap is 0.15 s).
    # alpha(Te, fc) = 1 / (1 + tau / Te), tau = 1 / (2 pi fc); dx = (x - x_hat_prev) / Te;
    # dx_hat = a_d dx + (1 - a_d) dx_hat_prev with a_d = alpha(Te, d_cutoff); fc = min_cutoff + beta |dx_hat|;
    # x_hat = a x + (1 - a) x_hat_prev with a = alpha(Te, fc).
    f = OneEuroFilter(min_cutoff=1.0, beta=0.1, d_cutoff=1.0)

    # 1) t = 0, x = 0: first sample passes through; x_hat = 0, dx_hat = 0.
    assert f(np.array([0.0]), 0.0)[0] == 0.0

    # 2) t = 0.1, x = 1: Te = 0.1, tau(1 Hz) = 1 / (2 pi) = 0.159155
    #    a_d = 1 / (1 + 0.159155 / 0.1) = 1 / 2.591549 = 0.385870
    #    dx = (1 - 0) / 0.1 = 10;  dx_hat = 0.385870 * 10 + 0.614130 * 0 = 3.858695
    #    fc = 1 + 0.1 * 3.858695 = 1.385870 Hz;  tau = 1 / (2 pi 1.385870) = 0.114842
    #    a = 1 / (1 + 0.114842 / 0.1) = 0.465460;  x_hat = 0.465460 * 1 + 0.534540 * 0 = 0.465460
    assert f(np.array([1.0]), 0.1)[0] == pytest.approx(0.465460, abs=1e-6)

    # 3) t = 0.2, x = 3: Te = 0.1, a_d = 0.385870
    #    dx = (3 - 0.465460) / 0.1 = 25.345400
    #    dx_hat = 0.385870 * 25.345400 + 0.614130 * 3.858695 = 12.149760
    #    fc = 1 + 0.1 * 12.149760 = 2.214976 Hz;  a = 1 / (1 + (1 / (2 pi 2.214976)) / 0.1) = 0.581889
    #    x_hat = 0.581889 * 3 + 0.418111 * 0.465460 = 1.940281
    assert f(np.array([3.0]), 0.2)[0] == pytest.approx(1.940281, abs=1e-6)

    # 4) t = 0.35, x = 2 (a dropped frame: Te = 0.15): a_d = 1 / (1 + 0.159155 / 0.15) = 0.485194
    #    dx = (2 - 1.940281) / 0.15 = 0.398124
    #    dx_hat = 0.485194 * 0.398124 + 0.514806 * 12.149760 = 6.447941
    #    fc = 1 + 0.1 * 6.447941 = 1.644794 Hz;  a = 1 / (1 + (1 / (2 pi 1.644794)) / 0.15) = 0.607871
    #    x_hat = 0.607871 * 2 + 0.392129 * 1.940281 = 1.976583
    assert f(np.array([2.0]), 0.35)[0] == pytest.approx(1.976583, abs=1e-6)


def test_vectorised_elements_are_independent():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 5, size=(20, 17, 2))
    t = np.arange(20) / FPS
    whole = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    single = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    out_whole = np.stack([whole(x[i], t[i]) for i in range(20)])
    out_single = np.array([single(x[i, 3, 1:2], t[i])[0] for i in range(20)])
    assert out_whole.shape == (20, 17, 2)
    np.testing.assert_allclose(out_whole[:, 3, 1], out_single, rtol=0, atol=1e-12)
    assert not np.allclose(out_whole, x)  # it did filter


def test_reduces_jitter_and_follows_step_with_defaults():
    # slow motion (20 px at 0.25 Hz) + jitter sigma 2 px at 30 fps; 32 realisations at once
    rng = np.random.default_rng(0)
    t = np.arange(300) / FPS
    truth = 20.0 * np.sin(2 * np.pi * 0.25 * t)
    z = truth[:, None] + rng.normal(0, 2.0, size=(300, 32))
    f = OneEuroFilter()
    y = np.stack([f(z[i], t[i]) for i in range(300)])
    reduction = 1 - np.std(np.diff(y - truth[:, None], axis=0)) / np.std(np.diff(z - truth[:, None], axis=0))
    assert reduction >= 0.6, reduction

    # a 50 px step at frame 30 is followed to 90% within 3 frames
    steps = np.where(np.arange(60) >= 30, 50.0, 0.0)
    g = OneEuroFilter()
    ys = np.array([g(np.array([steps[i]]), t[i])[0] for i in range(60)])
    lag = int(np.flatnonzero(ys[30:] >= 45.0)[0])
    assert lag <= 3, lag
    assert ys[29] == 0.0 and ys.max() <= 50.0  # causal, no overshoot


def test_low_score_holds_state_and_resumes_across_the_gap():
    # reference: a filter that only ever sees the good samples, at the same times
    t = np.arange(12) / FPS
    x = np.linspace(0, 22, 12)[:, None] * np.ones((12, 3))  # (T, 3) three elements moving together
    score = np.ones((12, 3))
    score[4:8, 1] = 0.1  # element 1 unreliable for frames 4..7
    x_bad = x.copy()
    x_bad[4:8, 1] = 500.0  # with wild measurements

    f = OneEuroFilter(min_cutoff=1.0, beta=0.05, score_threshold=0.3)
    out = np.stack([f(x_bad[i], t[i], score[i]) for i in range(12)])
    ref = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    good = [i for i in range(12) if i not in range(4, 8)]
    ref_out = {i: ref(x[i, 1:2], t[i])[0] for i in good}

    # held: exactly the estimate of frame 3, not pulled toward 500
    np.testing.assert_array_equal(out[4:8, 1], np.full(4, out[3, 1]))
    # resumed: identical to a filter that saw the gap as one long Te
    for i in good:
        assert out[i, 1] == pytest.approx(ref_out[i], abs=1e-12)
    # the other elements were not affected
    np.testing.assert_allclose(out[:, 0], out[:, 2])


def test_never_good_element_passes_raw_and_nan_is_held():
    f = OneEuroFilter()
    out = f(np.array([1.0, 2.0]), 0.0, np.array([0.9, 0.1]))
    np.testing.assert_array_equal(out, [1.0, 2.0])  # first sample passes through, good or not
    out = f(np.array([1.0, 7.0]), 1 / FPS, np.array([0.9, 0.1]))
    assert out[1] == 7.0  # element 1 has no estimate yet: raw value
    out = f(np.array([1.0, 7.0]), 2 / FPS, np.array([0.9, 0.9]))
    assert out[1] == 7.0  # its first good sample passes through
    held = f(np.array([np.nan, 8.0]), 3 / FPS)
    assert held[0] == 1.0 and np.isfinite(held).all()


def test_non_increasing_timestamps_hold():
    f = OneEuroFilter()
    f(np.array([0.0]), 0.0)
    a = f(np.array([10.0]), 1 / FPS)[0]
    assert f(np.array([99.0]), 1 / FPS)[0] == a  # duplicate timestamp
    assert f(np.array([99.0]), 0.0)[0] == a  # out of order
    b = f(np.array([10.0]), 2 / FPS)[0]  # continues as if those two never came
    ref = OneEuroFilter()
    ref(np.array([0.0]), 0.0)
    ref(np.array([10.0]), 1 / FPS)
    assert b == ref(np.array([10.0]), 2 / FPS)[0]


def test_dropped_frame_uses_elapsed_time():
    # same measurements; with a frame dropped (Te twice as long) alpha is larger, so the output moves further
    regular, dropped = OneEuroFilter(beta=0.0), OneEuroFilter(beta=0.0)
    regular(np.array([0.0]), 0.0)
    dropped(np.array([0.0]), 0.0)
    assert dropped(np.array([10.0]), 2 / FPS)[0] > regular(np.array([10.0]), 1 / FPS)[0] > 0


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"min_cutoff": 0.0}, "min_cutoff"), ({"beta": -1.0}, "beta"), ({"d_cutoff": float("nan")}, "d_cutoff"),
])
def test_bad_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        OneEuroFilter(**kwargs)


def test_bad_shapes_raise():
    f = OneEuroFilter()
    with pytest.raises(ValueError, match="weight"):
        f(np.zeros((17, 2)), 0.0, np.ones(2))
    f(np.zeros((17, 2)), 0.0, np.ones(17))
    with pytest.raises(ValueError, match="reset"):
        f(np.zeros((16, 2)), 0.1)
    with pytest.raises(ValueError, match="t must"):
        f(np.zeros((17, 2)), float("inf"))
